"""Benchmarks of issue 6 and 13: ``python -m bench --help``. Shared helpers: bench.common."""
