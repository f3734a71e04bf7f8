"""Backend fixtures for s3 (filled in by its backend package work)."""
