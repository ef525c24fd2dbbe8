"""anyconc's pytest plugin (placeholder; see issue 6)."""
