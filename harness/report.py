"""Result tables: aggregation (mean ± std over seeds per category and ablation, a pure function of
the stored rows), the published numbers beside ours, and rendering to rich or Markdown.

Tables are first built as plain `TableData` so the terminal and the Markdown show the same cells.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text

from harness.progress import LiveState
from harness.reference import PAPER, TOOTOUCH
from memseg.config import ABLATIONS, CATEGORIES

METRICS = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "pixel_f1": "pixel F1", "pixel_aupro": "AUPRO@0.3"}
THROUGHPUT = {"train_steps_per_s": "train steps/s", "infer_images_per_s": "infer img/s"}
_SHORT = {"train_steps_per_s": "steps/s", "infer_images_per_s": "img/s"}
AVERAGE = "average"


@dataclass(frozen=True)
class TableData:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    bold_last_row: bool = False
    left_columns: int = 1  # leading text columns; the rest are numbers, aligned right


def _category_order(names: list[str]) -> list[str]:
    known = [c for c in CATEGORIES if c in names]
    return known + sorted(n for n in names if n not in CATEGORIES)


def _ablation_order(names: list[str]) -> list[str]:
    known = [a for a in ABLATIONS if a in names]
    return known + sorted(n for n in names if n not in ABLATIONS)


def aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    """Per ablation and category, over the seeds of the `ok` rows: `n` (runs), `<metric>_mean` and
    `<metric>_std` in percent (sample std; NaN with one seed), throughput means, and `failed`
    (failed runs). Each ablation ends with an "average" row: the mean of the category means, and
    as std the spread over seeds of the per-seed average (only seeds complete for every category)."""
    columns = ["ablation", "category", "n", "failed"]
    for m in METRICS:
        columns += [f"{m}_mean", f"{m}_std"]
    columns += list(THROUGHPUT)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    ok = rows[rows["status"] == "ok"].copy()
    for m in METRICS:
        ok[m] = ok[m].astype(float) * 100.0
    failed = rows[rows["status"] != "ok"].groupby(["ablation", "category"]).size()
    out = []
    for ablation in _ablation_order(list(rows["ablation"].unique())):
        mine = ok[ok["ablation"] == ablation]
        cats = _category_order(list(rows.loc[rows["ablation"] == ablation, "category"].unique()))
        for category in cats:
            group = mine[mine["category"] == category]
            record = {"ablation": ablation, "category": category, "n": len(group), "failed": int(failed.get((ablation, category), 0))}
            for m in METRICS:
                record[f"{m}_mean"] = group[m].mean() if len(group) else math.nan
                record[f"{m}_std"] = group[m].std(ddof=1) if len(group) > 1 else math.nan
            for t in THROUGHPUT:
                record[t] = group[t].mean() if len(group) else math.nan
            out.append(record)
        out.append(_average_row(ablation, mine, out[-len(cats):]))
    return pd.DataFrame(out, columns=columns)


def _average_row(ablation: str, ok: pd.DataFrame, category_rows: list[dict]) -> dict:
    record = {"ablation": ablation, "category": AVERAGE, "n": len(ok), "failed": sum(r["failed"] for r in category_rows)}
    categories = [r["category"] for r in category_rows if r["n"] > 0]
    per_seed = ok.pivot_table(index="seed", columns="category", values=list(METRICS), aggfunc="mean") if len(ok) else None
    for m in METRICS:
        means = [r[f"{m}_mean"] for r in category_rows if r["n"] > 0]
        record[f"{m}_mean"] = float(pd.Series(means).mean()) if means else math.nan
        std = math.nan
        if per_seed is not None:
            complete = per_seed[m].reindex(columns=categories).dropna()
            if len(complete) > 1:
                std = float(complete.mean(axis=1).std(ddof=1))
        record[f"{m}_std"] = std
    for t in THROUGHPUT:
        record[t] = ok[t].mean() if len(ok) else math.nan
    return record


def _pct(mean: float, std: float) -> str:
    if mean is None or math.isnan(mean):
        return "—"
    return f"{mean:.2f}" if std is None or math.isnan(std) else f"{mean:.2f} ±{std:.2f}"


def _num(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _ref(values: dict[str, float], category: str) -> str:
    return f"{values[category]:.2f}" if category in values else ""


def _delta(ours: float, values: dict[str, float], category: str) -> str:
    """Our mean minus the published number, in points; empty where either is missing."""
    if category not in values or ours is None or math.isnan(ours):
        return ""
    return f"{ours - values[category]:+.2f}"


def summary_tables(rows: pd.DataFrame, sweep: str = "") -> list[TableData]:
    """Every table of the summary: one per ablation (with the published numbers beside the full
    model when the data is MVTec AD), the ablations side by side on image AUROC when there are
    several, and the failed jobs with their errors."""
    agg = aggregate(rows)
    tables: list[TableData] = []
    if agg.empty:
        return [TableData(f"{sweep}: no results yet", ("",), ())]
    datasets = set(rows["dataset"].dropna().unique())
    mvtec = datasets == {"mvtec"}
    for ablation in _ablation_order(list(agg["ablation"].unique())):
        part = agg[agg["ablation"] == ablation]
        show_ref = mvtec and ablation == "full"
        any_failed = bool(part["failed"].sum())
        headers = ["category", "runs"] + (["failed"] if any_failed else []) + list(METRICS.values())
        headers += [_SHORT[t] for t in THROUGHPUT]
        if show_ref:
            headers += ["paper img", "Δ", "paper px", "Δ", "TooTouch† img", "Δ", "TooTouch† px", "Δ"]
        body = []
        for _, r in part.iterrows():
            cells = [r["category"], str(int(r["n"]))] + ([str(int(r["failed"]))] if any_failed else [])
            cells += [_pct(r[f"{m}_mean"], r[f"{m}_std"]) for m in METRICS]
            cells += [_num(r[t]) for t in THROUGHPUT]
            if show_ref:
                for ref in (PAPER, TOOTOUCH):
                    for metric, values in (("image_auroc", ref.image_auroc), ("pixel_auroc", ref.pixel_auroc)):
                        cells += [_ref(values, r["category"]), _delta(r[f"{metric}_mean"], values, r["category"])]
            body.append(tuple(cells))
        caption = (
            "Percent, mean ±std over seeds; the final model of each run (no checkpoint picked on test data). "
            "steps/s: training, img/s: inference (means)."
        )
        if show_ref:
            caption += f"\nΔ: ours minus the published number to its left, in percentage points.\n{PAPER.note}\n{TOOTOUCH.note}"
        elif not mvtec:
            caption += f"\nData: {', '.join(sorted(datasets))}; published numbers are for MVTec AD and are not shown."
        title = f"{sweep} · {ablation}" if sweep else ablation
        tables.append(TableData(title, tuple(headers), tuple(body), caption, bold_last_row=True))
    ablations = _ablation_order(list(agg["ablation"].unique()))
    if len(ablations) > 1:
        tables.append(_side_by_side(agg, ablations, "image_auroc", sweep))
        from harness import compare_view  # imported here: it imports this module

        difference = compare_view.difference_to_full_table(rows, METRICS, sweep)
        if difference is not None:
            tables.append(difference)
    failed = rows[rows["status"] != "ok"]
    if not failed.empty:
        body = tuple(
            (r.job_id, r.category, str(r.seed), r.ablation, str(r.attempts), (r.error or "").splitlines()[0][:200] if r.error else "")
            for r in failed.sort_values("job_id").itertuples()
        )
        tables.append(
            TableData(
                f"{sweep} · failed jobs" if sweep else "failed jobs",
                ("job", "category", "seed", "ablation", "attempts", "error"),
                body,
                "Re-run them with --retry-failed; the traceback is in the job's Parquet row.",
                left_columns=6,
            )
        )
    return tables


def _side_by_side(agg: pd.DataFrame, ablations: list[str], metric: str, sweep: str) -> TableData:
    pivot = agg.pivot_table(index="category", columns="ablation", values=f"{metric}_mean", aggfunc="first", dropna=False)
    cats = _category_order([c for c in pivot.index if c != AVERAGE]) + [AVERAGE]
    body = tuple(
        tuple([c] + [_pct(pivot.at[c, a], math.nan) if a in pivot.columns and c in pivot.index else "—" for a in ablations])
        for c in cats
    )
    title = f"{sweep} · {METRICS[metric]} by ablation" if sweep else f"{METRICS[metric]} by ablation"
    return TableData(title, tuple(["category"] + ablations), body, "Percent, mean over seeds.", bold_last_row=True)


def to_rich(table: TableData) -> Table:
    out = Table(title=table.title, caption=table.caption or None, caption_justify="left", show_lines=False)
    for i, header in enumerate(table.headers):
        out.add_column(header, justify="left" if i < table.left_columns else "right", no_wrap=i == 0)
    for i, row in enumerate(table.rows):
        last = table.bold_last_row and i == len(table.rows) - 1
        out.add_row(*row, style="bold" if last else None, end_section=i == len(table.rows) - 2 and table.bold_last_row)
    return out


def to_markdown(table: TableData) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"### {table.title}", "", "| " + " | ".join(cell(h) for h in table.headers) + " |"]
    lines.append("| " + " | ".join("---" if i < table.left_columns else "---:" for i in range(len(table.headers))) + " |")
    for i, row in enumerate(table.rows):
        last = table.bold_last_row and i == len(table.rows) - 1
        lines.append("| " + " | ".join(f"**{cell(c)}**" if last and c else cell(c) for c in row) + " |")
    if table.caption:
        lines += [""] + [f"{line}  " for line in table.caption.splitlines()]
    return "\n".join(lines) + "\n"


def running_view(state: LiveState) -> Group:
    """The live part of the run display: counts, and one line per running job."""
    counts = Text.assemble(
        ("done ", "dim"), (str(state.succeeded + state.done_before), "green"),
        ("  failed ", "dim"), (str(state.failed), "red" if state.failed else "green"),
        ("  running ", "dim"), (str(sum(j.started for j in state.running.values())), "cyan"),
        ("  pending ", "dim"), (str(state.pending + sum(not j.started for j in state.running.values())), "yellow"),
        ("  retried ", "dim"), (str(state.retried), "magenta" if state.retried else "dim"),
    )
    table = Table(box=None, pad_edge=False, show_header=bool(state.running))
    for name in ("job", "try", "node", "phase", "step", "loss", "time"):
        table.add_column(name, justify="left" if name in ("job", "node", "phase") else "right")
    for job in sorted(state.running.values(), key=lambda j: j.job_id):
        p = job.progress
        phase = p.phase if p else ("starting" if job.started else "waiting for resources")
        step = f"{p.step}/{p.total}" if p else ""
        loss = f"{p.loss:.4f}" if p and p.loss is not None else ""
        elapsed = f"{time.monotonic() - job.since:.0f} s" if job.started else ""
        table.add_row(job.job_id, str(job.attempt), job.hostname, phase, step, loss, elapsed)
    return Group(counts, table)
