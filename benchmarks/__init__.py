"""Benchmarks: ``nox -s bench`` or ``python -m benchmarks [NAME...]``."""
