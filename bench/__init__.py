"""Benchmarks: `make bench` (python -m bench.run) writes its results to docs/benchmarks.md."""
