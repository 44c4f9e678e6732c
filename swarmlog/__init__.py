"""swarmlog facade (filled in as the API lands)."""
