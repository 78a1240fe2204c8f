"""Benchmarks of the stream pipeline, the console, the journal, the store and the attached console:
``python -m bench --help``. Shared helpers: bench.common."""
