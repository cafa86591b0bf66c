"""The benchmarks' report: a markdown table of ours against the raw SDK, and plots.

Plots need matplotlib, which only ``nox -s bench`` installs; without it the tables are still
written and the plots are skipped with a note.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One figure measured for ours and for the raw SDK, in the same run."""

    figure: str
    ours: float
    raw: float
    number: str = "{:.2f}"
    target: float | None = None
    """The ratio ours/raw must not exceed, where the project set one."""
    ratio_means_something: bool = True
    """False for differences, whose ratio says nothing."""

    @property
    def ratio(self) -> float:
        return self.ours / self.raw if self.raw else float("nan")

    def markdown(self) -> str:
        target = "" if self.target is None else f"≤ {self.target:g}"
        verdict = "" if self.target is None else (" ✓" if self.ratio <= self.target else " ✗")
        ratio = f"{self.ratio:.2f}{verdict}" if self.ratio_means_something else ""
        return (
            f"| {self.figure} | {self.number.format(self.ours)} | {self.number.format(self.raw)} "
            f"| {ratio} | {target} |"
        )


def publish(path: Path, results: Mapping[str, Any], table: str) -> None:
    """Write ``results`` as JSON to ``path`` and print ``table`` (what the docs show)."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    print(f"\nwritten to {path}")


def write_markdown(rows: Sequence[Row], path: Path) -> None:
    lines = [
        "| figure | ours | raw SDK | ratio ours/raw | target |",
        "|---|---:|---:|---:|---|",
        *(row.markdown() for row in rows),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: plots skipped; nox -s bench installs it)")
        return None
    return plt


def _plot(path: Path, draw: Callable[[Any], None]) -> None:
    """Let ``draw`` fill the axes of a 7 x 3.5 in figure; save it, with a legend, to ``path``."""
    plt = _pyplot()
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=(7, 3.5))
    draw(axes)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_bars(
    groups: Mapping[str, Sequence[float | None]],
    labels: Sequence[str],
    ylabel: str,
    path: Path,
) -> None:
    """Grouped bars: one group per condition, one bar per client (``None``: not measured)."""
    width = 0.8 / len(labels)

    def draw(axes: Any) -> None:
        for index, label in enumerate(labels):
            xs = [g + index * width for g, values in enumerate(groups.values()) if values[index]]
            ys = [values[index] for values in groups.values() if values[index]]
            bars = axes.bar(xs, ys, width, label=label)
            axes.bar_label(bars, fmt="%.2f", fontsize=8)
        axes.set_xticks([g + width * (len(labels) - 1) / 2 for g in range(len(groups))])
        axes.set_xticklabels(list(groups))
        axes.set_ylabel(ylabel)

    _plot(path, draw)


def plot_lines(
    series: Mapping[str, Sequence[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    path: Path,
) -> None:
    """One line per series of (x, y) points."""

    def draw(axes: Any) -> None:
        for label, points in series.items():
            axes.plot([x for x, _ in points], [y for _, y in points], label=label)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)

    _plot(path, draw)
