"""Measurements too slow or noisy for tests: ``python -m benchmarks.<name>``."""
