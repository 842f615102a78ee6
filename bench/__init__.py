"""Benchmarks of the Integrations Console: `make bench` or `python -m bench` (see bench/README.md)."""
