"""Benchmarks (``make bench``): see `benchmarks/bench.py`."""
