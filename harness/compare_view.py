"""How a comparison (harness.compare) is shown: tables as `tables.TableData` (so the terminal,
Markdown and HTML show the same cells), JSON, and the forest plot of the HTML report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from harness.compare import (
    BETTER,
    OVERALL,
    WORSE,
    Comparison,
    Estimate,
    ProtocolMismatch,
    Study,
    compare_ablations,
    compare_variants,
)
from harness.store import group_label, ok_rows, variants_of
from harness.tables import TableData, ablation_order

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: `compare` in a terminal needs none (start-up time)
    from matplotlib.figure import Figure

BASELINE_ABLATION = "full"
_MARKS = {BETTER: " ▲", WORSE: " ▼"}


def comparison_tables(study: Study, labels: Mapping[str, str]) -> list[TableData]:
    """Per comparison: the overall table (one row per metric, every statistic), the table by
    category (difference and interval per metric), and the unpaired rows when there are any."""
    tables: list[TableData] = []
    for c in study.comparisons:
        tables.append(_overall_table(c, study, labels))
        if c.categories:
            tables.append(_category_table(c, study, labels))
        if c.unpaired:
            variant = any(u.variant for u in c.unpaired)  # a column only for rows of recipe variants
            headers = ("side", "job", "category", "seed", "ablation", *(("variant",) if variant else ()), "reason")
            tables.append(
                TableData(
                    f"{c.name}: {len(c.unpaired)} unpaired row(s), not in the statistics",
                    headers,
                    tuple(
                        (u.side, u.job_id, u.category, str(u.seed), u.ablation, *((u.variant,) if variant else ()), u.reason)
                        for u in c.unpaired
                    ),
                    "A row pairs with the other side's row of the same category, seed and config; "
                    "failed jobs and their partners take no part.",
                    left_columns=len(headers),
                )
            )
    if not study.comparisons:
        tables.append(TableData("nothing to compare", ("",), ()))
    return tables


def to_json(study: Study) -> str:
    return json.dumps(study.to_dict(), indent=2, allow_nan=False)


def difference_to_full_table(rows: pd.DataFrame, labels: Mapping[str, str], sweep: str = "") -> TableData | None:
    """For the summary: each ablation's difference to `full` over all categories, per metric, with
    its interval and a marker when significant. None when there is nothing to compare."""
    ok = ok_rows(rows)
    ablations = ablation_order(list(ok["ablation"].unique()))
    if BASELINE_ABLATION not in ablations or len(ablations) < 2:
        return None
    candidates = [a for a in ablations if a != BASELINE_ABLATION]
    title = f"{sweep} · difference to full" if sweep else "difference to full"
    try:
        study = compare_ablations(rows, BASELINE_ABLATION, candidates, tuple(labels), sweep=sweep, per_category=False)
    except ProtocolMismatch as err:
        return TableData(title, ("not compared",), ((str(err),),), left_columns=1)
    return _difference_table(
        study, labels, title, "ablation", "ablation minus full", [c.candidate.label for c in study.comparisons]
    )


def difference_between_variants_table(rows: pd.DataFrame, labels: Mapping[str, str], sweep: str = "") -> TableData | None:
    """For the summary of a sweep with recipe variants: each variant's difference to the first by
    name, per ablation, as difference_to_full_table. None without two variants."""
    ok = ok_rows(rows)
    variants = sorted(set(variants_of(ok)) - {""})
    if len(variants) < 2:
        return None
    title = f"{sweep} · difference to {variants[0]}" if sweep else f"difference to {variants[0]}"
    try:
        study = compare_variants(rows, variants[0], variants[1:], tuple(labels), sweep=sweep, per_category=False)
    except ValueError as err:  # ProtocolMismatch, or variants that share no ablation
        return TableData(title, ("not compared",), ((str(err),),), left_columns=1)
    names = [group_label(str(c.candidate.ablation), str(c.candidate.variant)) for c in study.comparisons]
    minus = f"variant minus {variants[0]} (python -m harness compare --variants for another baseline)"
    return _difference_table(study, labels, title, "variant", minus, names)


def _difference_table(study: Study, labels: Mapping[str, str], title: str, what: str, minus: str, names: list[str]) -> TableData:
    """One row per comparison of `study` (named `names`): its pairs and overall Δ [interval] per metric."""
    body = [(name, str(len(c.pairs)), *(_diff_cell(c.estimate(m)) for m in labels)) for name, c in zip(names, study.comparisons)]
    caption = (
        f"Percentage points, {minus}, mean over categories of the per-category mean difference over paired seeds; "
        f"[{_pct(study.settings.confidence)} interval: bootstrap over categories, then seeds]. "
        f"▲/▼: better/worse, Holm-adjusted Wilcoxon p < {study.settings.alpha:g} and the interval excludes 0 "
        "(python -m harness compare for p-values, per-category numbers and the detectable effect)."
    )
    return TableData(title, (what, "pairs", *(f"Δ {labels[m]}" for m in labels)), tuple(body), caption, left_columns=1)


def forest_figure(comparison: Comparison, labels: Mapping[str, str]) -> Figure:
    """One panel per metric: each category's difference with its interval, the overall one
    (diamond) at the bottom; filled green/red when significant, zero marked."""
    categories = list(comparison.categories)
    rows = categories + [OVERALL]
    from matplotlib.figure import Figure  # start-up time: see the imports

    metrics = [m for m in labels if any(e.metric == m for e in comparison.estimates)]
    figure = Figure(figsize=(max(6.0, 3.1 * len(metrics)), 0.28 * len(rows) + 1.5))
    axes = figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for y, scope in enumerate(rows):
            try:
                e = comparison.estimate(metric, scope)
            except KeyError:
                continue
            if math.isnan(e.diff):
                continue
            colour = {BETTER: "tab:green", WORSE: "tab:red"}.get(e.verdict, "0.35")
            low = e.diff - e.ci_low if math.isfinite(e.ci_low) else 0.0
            high = e.ci_high - e.diff if math.isfinite(e.ci_high) else 0.0
            ax.errorbar(
                e.diff,
                y,
                xerr=[[low], [high]],
                fmt="D" if scope == OVERALL else "o",
                color=colour,
                markersize=6 if scope == OVERALL else 4,
                capsize=2,
                elinewidth=1.1,
            )
        ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(labels[metric], fontsize=10)
        ax.set_xlabel("difference (points)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), rows)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)  # first category on top, overall at the bottom
    axes[0].get_yticklabels()[-1].set_fontweight("bold")
    figure.suptitle(f"{comparison.name}: {comparison.candidate.label} minus {comparison.baseline.label}", fontsize=10)
    figure.tight_layout()
    return figure


def report_section_parts(rows: pd.DataFrame, labels: Mapping[str, str]) -> list[tuple[Comparison, list[TableData], Figure]] | str:
    """For the HTML report: each ablation against full, and each recipe variant against the first
    by name, with their tables and forest plots, or a sentence saying why there is nothing to compare."""
    ok = ok_rows(rows)
    ablations = ablation_order(list(ok["ablation"].unique()))
    variants = sorted(set(variants_of(ok)) - {""})
    studies = []
    try:
        if BASELINE_ABLATION in ablations and len(ablations) > 1:
            candidates = [a for a in ablations if a != BASELINE_ABLATION]
            studies.append(compare_ablations(rows, BASELINE_ABLATION, candidates, tuple(labels)))
        if len(variants) > 1:
            studies.append(compare_variants(rows, variants[0], variants[1:], tuple(labels)))
    except ValueError as err:  # ProtocolMismatch, or variants that share no ablation
        return f"Not compared: {err}"
    if not studies:
        return "Nothing to compare: the sweep needs the full model and at least one other ablation, or two recipe variants."
    parts = []
    for study in studies:
        tables = comparison_tables(study, labels)
        for c in study.comparisons:
            mine = [t for t in tables if t.title.startswith(f"{c.name}:")]
            parts.append((c, mine, forest_figure(c, labels)))
    return parts


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _overall_table(c: Comparison, study: Study, labels: Mapping[str, str]) -> TableData:
    s = study.settings
    effect = s.effect
    headers = [
        "metric",
        "pairs",
        c.baseline.label,
        c.candidate.label,
        "Δ",
        f"{_pct(s.confidence)} CI",
        "p",
        "p Holm",
        "verdict",
        f"detectable ({_pct(s.power)} power)",
    ]
    if effect is not None:
        headers.append(f"seeds for ±{effect:g}")
    body = []
    for metric in labels:
        if metric not in study.metrics:
            continue
        e = c.estimate(metric)
        cells = [
            labels[metric],
            str(e.n_pairs),
            _num(e.baseline_mean),
            _num(e.candidate_mean),
            _signed(e.diff),
            _interval(e),
            _p(e.p_value),
            _p(e.p_holm),
            e.verdict,
            _mde(e),
        ]
        if effect is not None:
            cells.append("—" if e.seeds_needed is None else str(e.seeds_needed))
        body.append(tuple(cells))
    family = len(study.metrics) * len(study.comparisons)
    lines = [
        f"Percentage points; Δ = {c.candidate.label} minus {c.baseline.label}, the mean over {_categories(c)} of each "
        "category's mean paired difference. Pairs: runs of the same category, seed and config on both sides"
        + (f" (compared: {'; '.join(c.differs)})" if c.differs else "")
        + ".",
        (
            f"CI: percentile bootstrap resampling categories, then seeds within them ({s.resamples} resamples, seed {s.seed}). "
            f"p: two-sided Wilcoxon signed-rank over the pairs; p Holm: adjusted over {family} test(s) "
            f"({len(study.metrics)} metric(s) x {len(study.comparisons)} comparison(s))."
        ),
        (
            f"Verdict better/worse: p Holm < {s.alpha:g} and the CI excludes 0. Detectable: the smallest true difference these "
            f"pairs find with {_pct(s.power)} power at alpha {s.alpha:g} (paired t-test on the observed spread; "
            "∞: too few pairs for Wilcoxon to reach alpha)."
        ),
    ]
    if effect is not None:
        lines.append(f"Seeds for ±{effect:g}: seeds per category that would detect a true difference of {effect:g} points.")
    if c.protocol:
        lines.append("Protocol: " + ", ".join(f"{k}={v}" for k, v in c.protocol.items()) + ".")
    return TableData(f"{c.name}: overall", tuple(headers), tuple(body), "\n".join(lines), left_columns=1)


def _category_table(c: Comparison, study: Study, labels: Mapping[str, str]) -> TableData:
    metrics = [m for m in labels if m in study.metrics]
    body = []
    for scope in (*c.categories, OVERALL):
        pairs = max((c.estimate(m, scope).n_pairs for m in metrics if _has(c, m, scope)), default=0)
        cells = [scope, str(pairs)]
        cells += [_diff_cell(c.estimate(m, scope)) if _has(c, m, scope) else "—" for m in metrics]
        body.append(tuple(cells))
    caption = (
        f"Δ [{_pct(study.settings.confidence)} CI] in points per category (CI: bootstrap over its seeds) and overall. "
        f"▲/▼: significant after Holm's correction within the row's scope. With 5 seeds or fewer a category alone "
        "cannot reach significance (Wilcoxon's smallest p is 2 / 2^n)."
    )
    return TableData(
        f"{c.name}: by category",
        ("category", "pairs", *(f"Δ {labels[m]}" for m in metrics)),
        tuple(body),
        caption,
        bold_last_row=True,
    )


def _has(c: Comparison, metric: str, scope: str) -> bool:
    return any(e.metric == metric and e.scope == scope for e in c.estimates)


def _categories(c: Comparison) -> str:
    n = len(c.categories) or max((e.n_categories for e in c.estimates), default=0)
    return f"{n} category" if n == 1 else f"{n} categories"


def _diff_cell(e: Estimate) -> str:
    if e.n_pairs == 0 or math.isnan(e.diff):
        return "—"
    return f"{_signed(e.diff)} {_interval(e)}{_MARKS.get(e.verdict, '')}"


def _interval(e: Estimate) -> str:
    if math.isnan(e.ci_low):
        return "[—]"
    return f"[{_signed(e.ci_low)}, {_signed(e.ci_high)}]"


def _signed(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:+.2f}"


def _num(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2f}"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _mde(e: Estimate) -> str:
    if math.isinf(e.mde):
        return "∞"
    return "—" if math.isnan(e.mde) else f"{e.mde:.2f}"


def _pct(fraction: float) -> str:
    return f"{100 * fraction:g}%"
