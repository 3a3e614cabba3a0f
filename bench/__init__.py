"""Benchmarks (`make bench`, i.e. `python -m bench`); not tests."""
