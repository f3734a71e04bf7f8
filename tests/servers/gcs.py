"""Backend fixtures for gcs (filled in by its backend package work)."""
