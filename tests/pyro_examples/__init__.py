"""Pyro's own example code, pinned as test fixtures (see the header of each file)."""
