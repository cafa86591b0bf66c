"""Measurements too slow or noisy for tests: ``python -m benchmarks.<name>``."""

from pathlib import Path

AUDIO = Path(__file__).parents[1] / "tests" / "data"
"""The test clips with their reference transcripts (manifest.tsv; credits in NOTICE)."""
