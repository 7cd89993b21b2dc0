"""Benchmarks of grid-mgmt against the issue's targets: `python -m bench [--only NAME] [--quick]` (see README.md)."""
