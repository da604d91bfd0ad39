"""The identical node every device runs: its agents, its home and its CLI."""
