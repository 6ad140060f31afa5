"""How training curves are shown: a terminal sparkline per job (`harness report --curves`) and the
charts of the HTML report's "Training curves" section (one per job, an overlay per category).

A validation curve is always named as `memseg.curves.VALIDATION_LABEL` (simulated anomalies on
held-out training images): it is never a test score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.text import Text

from harness import store
from harness.curves_store import load_curves
from harness.tables import TableData, to_markdown, to_rich
from memseg.curves import VALIDATION_LABEL, TrainingCurves, finite, label_of

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

BLOCKS = "▁▂▃▄▅▆▇█"
GAP = "·"  # a stretch with no finite value (a diverged loss records NaN or inf)
WIDTH = 32
# The validation series a view shows first, when the job recorded it.
VALIDATION_SHOWN = ("image_auroc", "pixel_auroc", "loss")
LINESTYLES = ("-", "--", ":", "-.")
HTML_CAPTION = (
    "Training loss (total, L1 and focal parts) at each log interval. Dashed: the validation curve, when the sweep "
    f"recorded one: {VALIDATION_LABEL} (held-out training images), never a test score, and never used to pick a checkpoint."
)


def sparkline(values: Sequence[float], width: int = WIDTH) -> str:
    """The values as one line of block characters, at most `width` wide (longer series are averaged
    over equal stretches); low is ▁, high is █, a stretch without a finite value is ·."""
    if not values:
        return ""
    n = min(width, len(values))
    buckets = [finite(tuple(values[len(values) * k // n : len(values) * (k + 1) // n])) for k in range(n)]
    means = [sum(b) / len(b) if b else math.nan for b in buckets]
    shown = [m for m in means if not math.isnan(m)]
    if not shown:
        return GAP * n
    low, high = min(shown), max(shown)
    top = len(BLOCKS) - 1

    def block(m: float) -> str:
        if math.isnan(m):
            return GAP
        return BLOCKS[top // 2 if high == low else round((m - low) / (high - low) * top)]

    return "".join(block(m) for m in means)


def load_all(results_dir: str | Path, sweep: str, job_ids: Sequence[str]) -> dict[str, TrainingCurves]:
    """job_id -> curves of the jobs that recorded some."""
    return {j: c for j in job_ids if (c := load_curves(results_dir, sweep, j)) is not None}


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _trend(values: Sequence[float], best: str = "min") -> str:
    """first → last (and the best: the min of a loss, the max of an AUROC) of a series."""
    shown = finite(tuple(values))
    if not shown:
        return "no finite value"
    return f"{_number(values[0])} → {_number(values[-1])} ({best} {_number(min(shown) if best == 'min' else max(shown))})"


def _validation_cell(curves: TrainingCurves) -> str:
    """The job's validation curve as a sparkline with its name and trend ("—" when it recorded none)."""
    key = _validation_series(curves) if curves.has_validation else None
    if key is None:
        return "—"
    values = curves.validation[key]
    name = label_of(f"validation/{key}").split(",")[0]  # the column already says "validation on simulated anomalies"
    return f"{sparkline(values)} {name} {_trend(values, 'min' if key == 'loss' else 'max')}"


def _validation_series(curves: TrainingCurves) -> str | None:
    return next((k for k in VALIDATION_SHOWN if k in curves.validation), next(iter(curves.validation), None))


def curves_table(rows: Any, curves: Mapping[str, TrainingCurves], title: str) -> TableData:
    """One line per finished job of `rows` (a frame of `store.load_results`): its training-loss sparkline and, when it
    recorded one, its validation sparkline, labelled as validation on simulated anomalies. Rendered
    to the terminal or to Markdown (harness.tables)."""
    validation = any(c.has_validation for c in curves.values())
    headers = (
        "job",
        "category",
        "ablation",
        "seed",
        "training loss",
        "first → last",
        *((VALIDATION_LABEL,) if validation else ()),
    )
    lines: list[tuple[str, ...]] = []
    missing = 0
    for row in store.records(store.ok_rows(rows)):
        c = curves.get(row.job_id)
        if c is None or "loss" not in c.train:
            missing += 1
            continue
        cells = [
            str(row.job_id), str(row.category), store.group_label(row.ablation, row.variant), str(row.seed),
            sparkline(c.train["loss"]), _trend(c.train["loss"]),
        ]  # fmt: skip
        if validation:
            cells.append(_validation_cell(c))
        lines.append(tuple(cells))
    notes = [f"steps {_steps(curves)}; each line scales from its own min (▁) to its max (█); · no finite value"]
    if validation:
        notes.append(f"{VALIDATION_LABEL}: held-out training images, never the test set and never a test score")
    if missing:
        notes.append(f"{missing} finished job(s) recorded no curves")
    return TableData(title, headers, tuple(lines), caption="\n".join(notes), left_columns=3)


def _steps(curves: Mapping[str, TrainingCurves]) -> str:
    ends = sorted({c.steps[-1] for c in curves.values() if c.steps})
    return "?" if not ends else f"up to {ends[-1]}" if len(ends) == 1 else f"up to {ends[0]}–{ends[-1]}"


def renderables(
    results_dir: str | Path, sweep: str, rows: pd.DataFrame | None = None, markdown: bool = False
) -> list[RenderableType]:
    """What `harness report --curves` prints for one sweep: rich tables for the terminal, or Markdown
    text (a str, printed as it is) with `markdown` (`rows`: as the caller loaded them; None: read here)."""
    rows = store.load_results(results_dir, sweep) if rows is None else rows
    curves = load_all(results_dir, sweep, list(store.ok_rows(rows)["job_id"]))
    if not curves:
        note = f"{sweep}: no job recorded training curves"
        return [f"> {note}\n" if markdown else Text(note, style="yellow")]
    table = curves_table(rows, curves, f"training curves of {sweep}")
    return [to_markdown(table) if markdown else to_rich(table)]


# ----------------------------------------------------------------------------------------------
# The HTML report's charts (matplotlib is imported only when one is drawn)
# ----------------------------------------------------------------------------------------------


def job_figure(row: Any, curves: TrainingCurves) -> Figure:
    """One job's small chart: the training loss and its parts; beside it the validation curve, when
    recorded, titled as validation on simulated anomalies."""
    from matplotlib.figure import Figure

    panels = 2 if curves.has_validation else 1
    figure = Figure(figsize=(3.6 * panels, 2.4))
    ax = figure.add_subplot(1, panels, 1)
    for k, name in enumerate(("loss", "loss_l1", "loss_focal")):
        if name in curves.train:
            ax.plot(
                curves.steps,
                curves.train[name],
                label=label_of(f"train/{name}").replace("training loss: ", ""),
                color=f"C{k}",
                linewidth=1,
            )
    _style(ax, f"{row.job_id}", "loss")
    if panels == 2:
        ax = figure.add_subplot(1, 2, 2)
        for k, (name, values) in enumerate(curves.validation.items()):
            ax.plot(curves.val_steps, values, label=name, color=f"C{k + 3}", linestyle="--", marker=".", linewidth=1)
        _style(ax, VALIDATION_LABEL, "value")
    figure.tight_layout()
    return figure


def category_figure(category: str, jobs: Sequence[Any], curves: Mapping[str, TrainingCurves]) -> Figure:
    """Every job of a category on one chart: training loss (colour: ablation and variant, line style:
    seed) and, when any job recorded it, validation image AUROC on simulated anomalies."""
    from matplotlib.figure import Figure

    validation = [r for r in jobs if curves[r.job_id].has_validation]
    panels = 2 if validation else 1
    figure = Figure(figsize=(6 * panels, 3.2))
    groups = list(dict.fromkeys(store.group_label(r.ablation, r.variant) for r in jobs))
    seeds = sorted({int(r.seed) for r in jobs})

    def style(row: Any) -> dict[str, Any]:
        group = store.group_label(row.ablation, row.variant)
        return {"color": f"C{groups.index(group)}", "linestyle": LINESTYLES[seeds.index(int(row.seed)) % len(LINESTYLES)]}

    ax = figure.add_subplot(1, panels, 1)
    for row in jobs:
        c = curves[row.job_id]
        if "loss" in c.train:
            ax.plot(
                c.steps,
                c.train["loss"],
                label=f"{store.group_label(row.ablation, row.variant)} s{row.seed}",
                linewidth=1.1,
                **style(row),
            )
    _style(ax, f"{category}: training loss", "loss")
    if validation:
        ax = figure.add_subplot(1, 2, 2)
        for row in validation:
            c = curves[row.job_id]
            key = _validation_series(c)
            if key:
                ax.plot(
                    c.val_steps,
                    c.validation[key],
                    marker=".",
                    linewidth=1.1,
                    label=f"{store.group_label(row.ablation, row.variant)} s{row.seed}",
                    **style(row),
                )
        _style(ax, f"{category}: {label_of('validation/image_auroc')}", "image AUROC")
    figure.tight_layout()
    return figure


def _style(ax: Any, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("step", fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=5)
