"""Deterministic runs of the real node code over the in-memory transport."""
