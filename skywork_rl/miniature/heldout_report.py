"""The pipeline's held-out accuracy per stage: one line in the closing report, a PNG beside it.

Training stages with a `heldout:` group record ``heldout/accuracy`` in their `stage.json` (and the
first with `measure_start`, ``heldout/start_accuracy``: the model before any training, "base").
`heldout_curve` reads them back from the runner's report in pipeline order, so the user sees at a
glance which stage made the model better on problems none of them trained on. The PNG also draws
chance accuracy (`skywork_rl.miniature.heldout.chance_accuracy`) and states the protocol: temperature,
samples per row and rows.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from skywork_rl.records.atomic import atomic_path

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


def stale_heldout(report: dict[str, Any]) -> list[str]:
    """Ids of the stages the report marks ``stale`` that had measured held-out accuracy: their old value
    no longer matches their inputs, so the PNG shows them as stale instead of leaving them out."""
    return [
        str(entry["id"])
        for entry in report.get("stages", [])
        if entry.get("status") == "stale" and "heldout/accuracy" in (entry.get("stale_metrics") or {})
    ]


def heldout_protocol(report: dict[str, Any]) -> dict[str, Any] | None:
    """How the curve's numbers were measured, from the stages' ``heldout/*`` metrics: ``rows``,
    ``samples_per_row``, ``temperature`` and ``chance_accuracy`` (None when no stage recorded them),
    and ``text``, one line saying so (every distinct protocol when stages differ)."""
    seen: list[tuple[int, int, float]] = []
    chance: float | None = None
    for entry in report.get("stages", []):
        metrics = entry.get("metrics") or {}
        for prefix in ("heldout/start_", "heldout/"):
            rows = metrics.get(f"{prefix}rows")
            if not isinstance(rows, (int, float)):
                continue
            protocol = (
                int(rows),
                int(metrics.get(f"{prefix}samples_per_row", 1)),
                float(metrics[f"{prefix}temperature"]),
            )
            if protocol not in seen:
                seen.append(protocol)
            if chance is None and isinstance(metrics.get(f"{prefix}chance_accuracy"), (int, float)):
                chance = float(metrics[f"{prefix}chance_accuracy"])
    if not seen:
        return None
    rows, samples, temperature = seen[0]
    text = "; ".join(_describe(*p) for p in seen)
    if len(seen) > 1:
        text = f"protocols differ between stages: {text}"
    return {
        "rows": rows,
        "samples_per_row": samples,
        "temperature": temperature,
        "chance_accuracy": chance,
        "text": text,
    }


def _describe(rows: int, samples: int, temperature: float) -> str:
    if temperature == 0:
        return f"greedy (temperature 0), 1 answer per row, {rows} rows"
    return f"temperature {temperature:g}, mean of {samples} samples per row (avg@{samples}), {rows} rows"


def render_line(curve: list[tuple[str, float]]) -> str:
    """``held-out accuracy: base 0.00 -> sft 0.41 -> ...``."""
    return "held-out accuracy: " + " -> ".join(f"{label} {value:.2f}" for label, value in curve)


def plot_heldout(
    curve: list[tuple[str, float]],
    path: str | Path,
    title: str = "",
    protocol: dict[str, Any] | None = None,
    stale: list[str] | None = None,
) -> Path:
    """Bar chart of the curve, written atomically (matplotlib's Agg backend: no display needed); with
    `protocol` (`heldout_protocol`), a dashed chance line and the protocol under the title."""
    import matplotlib.pyplot as plt

    fig = heldout_figure(curve, title, protocol, stale)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def heldout_figure(
    curve: list[tuple[str, float]],
    title: str = "",
    protocol: dict[str, Any] | None = None,
    stale: list[str] | None = None,
) -> Any:
    """The figure `plot_heldout` writes; each of `stale` gets an empty bar marked "stale" (no value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stale = list(stale or [])
    labels = [label for label, _ in curve] + stale
    values = [value for _, value in curve] + [0.0] * len(stale)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 3.2))
    bars = ax.bar(labels, values, color="#4c72b0")
    for bar, value in zip(bars[: len(curve)], values, strict=False):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.01, f"{value:.2f}", ha="center", va="bottom")
    for bar in bars[len(curve) :]:  # no value: the old one was measured on a model its inputs no longer make
        ax.text(bar.get_x() + bar.get_width() / 2, 0.02, "stale", ha="center", va="bottom", color="#8c8c8c")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out accuracy")
    heading = (
        f"{title}: held-out accuracy after each stage" if title else "held-out accuracy after each stage"
    )
    if protocol is not None:
        chance = protocol.get("chance_accuracy")
        if chance is not None:
            label = f"chance {chance:.2f} (each task's most common answer)"
            ax.axhline(chance, color="#c44e52", linestyle="--", linewidth=1, label=label)
            ax.legend(loc="upper left", fontsize=8, frameon=False)
        heading += "\n" + textwrap.fill(protocol["text"], width=max(40, 14 * len(labels) + 20))
    ax.set_title(heading, fontsize=9 if protocol is not None else None)
    fig.tight_layout()
    return fig


def write_heldout_summary(report: dict[str, Any], root: str | Path) -> list[tuple[str, float]]:
    """Add ``heldout_accuracy`` ({label: accuracy}) to `report` and write the PNG into `root`
    when any stage measured held-out accuracy; returns the curve (empty: nothing measured)."""
    curve = heldout_curve(report)
    if curve:
        report["heldout_accuracy"] = dict(curve)
        protocol = heldout_protocol(report)
        if protocol is not None:
            report["heldout_protocol"] = protocol
        stale = stale_heldout(report)
        if stale:
            report["heldout_stale"] = stale
        report["heldout_plot"] = str(
            plot_heldout(curve, Path(root) / PLOT_FILE, str(report.get("name") or ""), protocol, stale)
        )
    return curve
