"""Backend fixtures for azure (filled in by its backend package work)."""
