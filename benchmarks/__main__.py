"""``python -m benchmarks [NAME ...]``: run the named benchmarks (all by default) in turn.

Each writes its numbers to ``bench-results/NAME.json`` and prints a table.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = (
    "engines",
    "engine_accuracy",
    "facade",
    "bulk",
    "bulk_postgres",
    "rollover",
    "rollover_speech",
    "controls",
    "simulate",
)


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        print(f"== {name}")
        sys.argv = [f"benchmarks.{name}"]  # each runs with its own defaults
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
