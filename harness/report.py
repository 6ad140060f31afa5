"""Result tables: aggregation (mean ± std over seeds per category, ablation and recipe variant, a
pure function of the stored rows) and the published numbers beside ours, as plain `TableData`
(harness.tables renders them) so the terminal, the Markdown and the HTML show the same cells.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd

from harness.reference import PAPER, TOOTOUCH
from harness.store import failed_rows, group_label, ok_rows, records, variants_of
from harness.tables import TableData, ablation_order, category_order
from memseg.caveats import RANDOM_INIT_REAL_DATA
from memseg.data.registry import DATASETS, SCORINGS
from memseg.result import METRICS, THRESHOLDED

THROUGHPUT = {"train_steps_per_s": "train steps/s", "infer_images_per_s": "infer img/s"}
_SHORT = {"train_steps_per_s": "steps/s", "infer_images_per_s": "img/s"}
AVERAGE = "average"


def groups_of(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The (ablation, variant) groups of the rows: ablations in canonical order, variants by name."""
    pairs = set(zip(rows["ablation"], variants_of(rows)))
    return [(a, v) for a in ablation_order(list({a for a, _ in pairs})) for v in sorted({v for b, v in pairs if b == a})]


def aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    """Per ablation, recipe variant and category, over the seeds of the `ok` rows: `n` (runs),
    `<metric>_mean` and `<metric>_std` in percent (sample std; NaN with one seed), throughput means,
    and `failed` (failed runs). Two variants are never averaged together. Each group ends with an
    "average" row: the mean of the category means, and as std the spread over seeds of the per-seed
    average (only seeds complete for every category)."""
    columns = ["ablation", "variant", "category", "n", "failed"]
    for m in METRICS:
        columns += [f"{m}_mean", f"{m}_std"]
    columns += list(THROUGHPUT)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.assign(variant=variants_of(rows), **{m: math.nan for m in METRICS if m not in rows})  # a metric added later: none
    ok = ok_rows(rows).copy()
    for m in METRICS:
        ok[m] = ok[m].astype(float) * 100.0
    failed = failed_rows(rows).groupby(["ablation", "variant", "category"]).size()
    out = []
    for ablation, variant in groups_of(rows):
        mine = ok[(ok["ablation"] == ablation) & (ok["variant"] == variant)]
        cats = category_order(list(rows.loc[(rows["ablation"] == ablation) & (rows["variant"] == variant), "category"].unique()))
        for category in cats:
            group = mine[mine["category"] == category]
            record = {
                "ablation": ablation,
                "variant": variant,
                "category": category,
                "n": len(group),
                "failed": int(failed.get((ablation, variant, category), 0)),
            }
            for m in METRICS:
                record[f"{m}_mean"] = group[m].mean() if len(group) else math.nan
                record[f"{m}_std"] = group[m].std(ddof=1) if len(group) > 1 else math.nan
            for t in THROUGHPUT:
                record[t] = group[t].mean() if len(group) else math.nan
            out.append(record)
        out.append(_average_row(ablation, variant, mine, out[-len(cats) :]))
    return pd.DataFrame(out, columns=columns)


def _average_row(ablation: str, variant: str, ok: pd.DataFrame, category_rows: list[dict]) -> dict:
    record = {
        "ablation": ablation,
        "variant": variant,
        "category": AVERAGE,
        "n": len(ok),
        "failed": sum(r["failed"] for r in category_rows),
    }
    categories = [r["category"] for r in category_rows if r["n"] > 0]
    per_seed = ok.pivot_table(index="seed", columns="category", values=list(METRICS), aggfunc="mean") if len(ok) else None
    for m in METRICS:
        means = [r[f"{m}_mean"] for r in category_rows if r["n"] > 0]
        record[f"{m}_mean"] = float(pd.Series(means).mean()) if means else math.nan
        std = math.nan
        if per_seed is not None and m in per_seed.columns.get_level_values(0):  # a metric no row has is dropped
            complete = pd.DataFrame(per_seed[m]).reindex(columns=categories).dropna()
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


def headline_metrics(rows: pd.DataFrame) -> dict[str, str]:
    """The metrics the summary prints for these rows (key -> label): those of each scoring protocol
    the rows were measured under (memseg.data.registry.SCORINGS, recorded in the row's `scoring`),
    in the order its authors print them; every metric for a protocol this code does not know."""
    names = {n for n in rows["scoring"].dropna() if n} if "scoring" in rows else set()
    wanted: list[str] = []
    for name in sorted(names or {"mvtec_ad"}):
        wanted += [m for m in (SCORINGS[name].headline if name in SCORINGS else METRICS) if m not in wanted]
    return {m: METRICS[m] for m in wanted}


def summary_tables(rows: pd.DataFrame, sweep: str = "", price_per_gpu_hour: float | None = None) -> list[TableData]:
    """Every table of the summary: one per ablation and recipe variant (with the published numbers
    beside the full model when the data is MVTec AD), the groups side by side on image AUROC when
    there are several, the GPU time (and its cost at `price_per_gpu_hour`) when jobs held GPUs or a
    price is given, and the failed jobs with their errors."""
    agg = aggregate(rows)
    if agg.empty:
        return [TableData(f"{sweep}: no results yet", ("",), ())]
    datasets = set(rows["dataset"].dropna().unique())
    groups = groups_of(agg)
    headline = headline_metrics(rows)
    tables = [
        _ablation_table(agg[(agg["ablation"] == a) & (agg["variant"] == v)], a, datasets, sweep, headline, variant=v)
        for a, v in groups
    ]
    if len(groups) > 1:
        tables.append(_side_by_side(agg, groups, "image_auroc", sweep))
        # Imported here for start-up time: scipy and matplotlib load only when there are groups to compare.
        from harness import compare_view

        difference = compare_view.difference_to_full_table(rows, METRICS, sweep)
        if difference is not None:
            tables.append(difference)
        between = compare_view.difference_between_variants_table(rows, METRICS, sweep)
        if between is not None:
            tables.append(between)
    calibrated = thresholds_table(rows, sweep)
    if calibrated is not None:
        tables.append(calibrated)
    warning = caveat(rows)
    if warning:  # next to the numbers it is about
        tables = [dataclasses.replace(t, caption=f"WARNING: {warning}\n{t.caption}") for t in tables]
    gpu_time = gpu_time_table(rows, sweep, price_per_gpu_hour)
    if gpu_time is not None:
        tables.append(gpu_time)
    failed = failed_rows(rows)
    if not failed.empty:
        tables.append(_failed_table(failed, sweep))
    return tables


ORACLE_LABEL = "pixel F1-max (oracle)"


def thresholds_table(rows: pd.DataFrame, sweep: str = "") -> TableData | None:
    """Anomalous or not, at thresholds fixed without the test set (memseg.calibration): per group
    and category, the mean over seeds of the image precision, recall, F1 and false positive rate
    and SegF1, beside pixel F1-max, labelled as the oracle it is (its threshold is the best one for
    the test set itself). None when no row was calibrated."""
    ok = ok_rows(rows)
    ok = ok[ok.get("threshold_rule", pd.Series("", index=ok.index)).fillna("") != ""]
    if ok.empty:
        return None
    ok = ok.assign(variant=variants_of(ok))
    keys = [*THRESHOLDED, "pixel_f1"]
    body = []
    for ablation, variant in groups_of(ok):
        mine = ok[(ok["ablation"] == ablation) & (ok["variant"] == variant)]
        for category in category_order(list(mine["category"].unique())):
            part = mine[mine["category"] == category]
            means = [_pct(100.0 * float(part[k].astype(float).mean()), math.nan) for k in keys]
            body.append((group_label(ablation, variant), category, str(len(part)), *means))
    headers = ("group", "category", "runs", *(THRESHOLDED[k] for k in THRESHOLDED), ORACLE_LABEL)
    rules = sorted(set(ok["threshold_rule"]))
    caption = (
        "Percent, mean over seeds. An image (a pixel) is called anomalous when its score is >= the image (pixel) "
        "threshold, fixed before the test set was read:\n" + "\n".join(rules) + "\n"
        "pixel F1-max is an oracle: its threshold is the best one for the test set itself, which no user has."
    )
    title = f"{sweep} · anomalous or not, at thresholds chosen without the test set" if sweep else "anomalous or not"
    return TableData(title, headers, tuple(body), caption, left_columns=2)


def gpu_time_table(rows: pd.DataFrame, sweep: str = "", price_per_gpu_hour: float | None = None) -> TableData | None:
    """GPU-hours of the sweep and per job (harness.store's gpu_seconds: wall time x GPU share),
    and their cost when a price is given; None when no job held a GPU and no price is given."""
    seconds = rows["gpu_seconds"].astype(float) if "gpu_seconds" in rows else pd.Series(dtype=float)
    known = seconds.dropna()
    if price_per_gpu_hour is None and not (known > 0).any():
        return None
    hours = known / 3600.0
    headers = ("", "jobs", "GPU-hours") + (("cost",) if price_per_gpu_hour is not None else ())

    def line(label: str, jobs: str, value: float) -> tuple[str, ...]:
        cells = [label, jobs, "—" if math.isnan(value) else f"{value:.3g}"]
        if price_per_gpu_hour is not None:
            cells.append("—" if math.isnan(value) else f"{value * price_per_gpu_hour:.2f}")
        return tuple(cells)

    empty = hours.empty
    body = (
        line("sweep", str(len(hours)), math.nan if empty else float(hours.sum())),
        line("per job, mean", "", math.nan if empty else float(hours.mean())),
        line("per job, max", "", math.nan if empty else float(hours.max())),
    )
    caption = "GPU-hours: each job's wall time (launch to result, latest run) x the GPU share its actor held (1/K with --jobs-per-gpu K; 0 on CPUs)."
    if price_per_gpu_hour is not None:
        caption += f" Cost at {price_per_gpu_hour:g} per GPU-hour."
    if len(known) < len(seconds):
        caption += f"\n{len(seconds) - len(known)} job(s) not counted: written before GPU time was recorded, or share unknown."
    title = f"{sweep} · GPU time" if sweep else "GPU time"
    return TableData(title, headers, body, caption, left_columns=1)


def caveat(rows: pd.DataFrame) -> str:
    """What the numbers cannot mean (memseg.caveats), when some row is flagged; "" otherwise."""
    flagged = "random_init_real_data" in rows and bool(rows["random_init_real_data"].fillna(False).astype(bool).any())
    return RANDOM_INIT_REAL_DATA if flagged else ""


def _ablation_table(
    part: pd.DataFrame, ablation: str, datasets: set[str], sweep: str, headline: dict[str, str], variant: str = ""
) -> TableData:
    """One ablation's (and recipe variant's) categories over seeds, in the data set's headline
    metrics; the published numbers beside the full model on MVTec AD."""
    mvtec = datasets == {"mvtec"}
    data_label = " + ".join(DATASETS[d].title if d in DATASETS else d for d in sorted(datasets))
    show_ref = mvtec and ablation == "full"
    any_failed = bool(part["failed"].sum())
    headers = ["category", "runs"] + (["failed"] if any_failed else []) + list(headline.values())
    headers += [_SHORT[t] for t in THROUGHPUT]
    if show_ref:
        headers += ["paper img", "Δ", "paper px", "Δ", "TooTouch† img", "Δ", "TooTouch† px", "Δ"]
    body = []
    for _, r in part.iterrows():
        cells = [r["category"], str(int(r["n"]))] + ([str(int(r["failed"]))] if any_failed else [])
        cells += [_pct(r[f"{m}_mean"], r[f"{m}_std"]) for m in headline]
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
        caption += (
            f"\nData: {data_label}; published numbers are for MVTec AD and are not shown "
            "(we know of no published MemSeg numbers for this data under this protocol)."
        )
    title = " · ".join(piece for piece in (sweep, data_label, ablation, variant) if piece)
    return TableData(title, tuple(headers), tuple(body), caption, bold_last_row=True)


def _failed_table(failed: pd.DataFrame, sweep: str) -> TableData:
    """The failed jobs with the first line of their error (and their recipe variant, when any has one)."""
    failed = failed.assign(variant=variants_of(failed))
    shown = bool((failed["variant"] != "").any())
    body = tuple(
        (r.job_id, r.category, str(r.seed), r.ablation, *((r.variant,) if shown else ()), str(r.attempts))
        + (str(r.error).splitlines()[0][:200] if r.error else "",)
        for r in records(failed.sort_values("job_id"))
    )
    headers = ("job", "category", "seed", "ablation", *(("variant",) if shown else ()), "attempts", "error")
    return TableData(
        f"{sweep} · failed jobs" if sweep else "failed jobs",
        headers,
        body,
        "Re-run them with --retry-failed; the traceback is in the job's Parquet row.",
        left_columns=len(headers),
    )


def _side_by_side(agg: pd.DataFrame, groups: list[tuple[str, str]], metric: str, sweep: str) -> TableData:
    labels = [group_label(a, v) for a, v in groups]
    agg = agg.assign(group=[group_label(a, v) for a, v in zip(agg["ablation"], agg["variant"])])
    pivot = agg.pivot_table(index="category", columns="group", values=f"{metric}_mean", aggfunc="first", dropna=False)
    cats = category_order([c for c in pivot.index if c != AVERAGE]) + [AVERAGE]
    means: dict[Any, dict[Any, float]] = pivot.to_dict()  # group -> category -> mean
    body = tuple(
        tuple([c] + [_pct(means[g][c], math.nan) if g in means and c in means[g] else "—" for g in labels]) for c in cats
    )
    by = "ablation and variant" if any(v for _, v in groups) else "ablation"
    title = f"{sweep} · {METRICS[metric]} by {by}" if sweep else f"{METRICS[metric]} by {by}"
    return TableData(title, tuple(["category"] + labels), body, "Percent, mean over seeds.", bold_last_row=True)
