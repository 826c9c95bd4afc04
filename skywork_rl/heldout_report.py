"""The pipeline's held-out accuracy per stage: one line in the closing report, a PNG beside it.

Training stages with a `heldout:` group record ``heldout/accuracy`` in their `stage.json` (and the
first with `measure_start`, ``heldout/start_accuracy``: the model before any training, "base").
`heldout_curve` reads them back from the runner's report in pipeline order, so the user sees at a
glance which stage made the model better on problems none of them trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skywork_rl.atomic import atomic_path

PLOT_FILE = "heldout_accuracy.png"


def heldout_curve(report: dict[str, Any]) -> list[tuple[str, float]]:
    """``[(label, accuracy), ...]``: "base" (the first start measurement), then each stage that has one."""
    curve: list[tuple[str, float]] = []
    for entry in report.get("stages", []):
        metrics = entry.get("metrics") or {}
        start = metrics.get("heldout/start_accuracy")
        if not curve and isinstance(start, (int, float)):
            curve.append(("base", float(start)))
        value = metrics.get("heldout/accuracy")
        if isinstance(value, (int, float)):
            curve.append((str(entry["id"]), float(value)))
    return curve


def render_line(curve: list[tuple[str, float]]) -> str:
    """``held-out accuracy: base 0.00 -> sft 0.41 -> ...``."""
    return "held-out accuracy: " + " -> ".join(f"{label} {value:.2f}" for label, value in curve)


def plot_heldout(curve: list[tuple[str, float]], path: str | Path, title: str = "") -> Path:
    """Bar chart of the curve, written atomically (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, _ in curve]
    values = [value for _, value in curve]
    fig, ax = plt.subplots(figsize=(1.2 * len(curve) + 2, 3.2))
    bars = ax.bar(labels, values, color="#4c72b0")
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.01, f"{value:.2f}", ha="center", va="bottom")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out accuracy")
    ax.set_title(
        f"{title}: held-out accuracy after each stage" if title else "held-out accuracy after each stage"
    )
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def write_heldout_summary(report: dict[str, Any], root: str | Path) -> list[tuple[str, float]]:
    """Add ``heldout_accuracy`` ({label: accuracy}) to `report` and write the PNG into `root`
    when any stage measured held-out accuracy; returns the curve (empty: nothing measured)."""
    curve = heldout_curve(report)
    if curve:
        report["heldout_accuracy"] = dict(curve)
        report["heldout_plot"] = str(
            plot_heldout(curve, Path(root) / PLOT_FILE, str(report.get("name") or ""))
        )
    return curve
