"""What `harness report --name SEARCH` shows of a recipe search (harness.tune): the best trials, each
searched field against the validation metric (a rank correlation in the terminal, a small chart per
field in the HTML page), and how many trials the scheduler stopped, and at which steps. It reads the
trial rows (harness.trials_store) alone and never imports Ray.

Every number here is a validation number (simulated anomalies on held-out training images), never a
test score: the final run of the tuned sweep file gives those (docs/tuning.md).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from harness.trials_store import STATUS_FAILED, STATUS_FINISHED, STATUS_STOPPED, curve_of, recipe_of
from memseg.atomic import write_text_atomic

BEST_SHOWN = 5
_LABEL = "validation on simulated anomalies"


def ranked(rows: pd.DataFrame) -> pd.DataFrame:
    """The trials best first: finished ones by their metric (the search's mode), then stopped, then failed."""
    if rows.empty:
        return rows
    sign = -1.0 if str(rows["mode"].iloc[0]) == "max" else 1.0
    order = rows["status"].map({STATUS_FINISHED: 0, STATUS_STOPPED: 1}).fillna(2)
    key = (sign * rows["value"].astype(float)).fillna(math.inf)
    return rows.assign(_order=order, _key=key).sort_values(["_order", "_key", "trial_id"]).drop(columns=["_order", "_key"])


def fields_of(rows: pd.DataFrame) -> list[str]:
    """The searched fields, in the order of the first trial's recipe."""
    seen: dict[str, None] = {}
    for _, row in rows.iterrows():
        seen.update(dict.fromkeys(recipe_of(row)))
    return list(seen)


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def best_table(rows: pd.DataFrame, limit: int = BEST_SHOWN) -> Table:
    metric = str(rows["metric"].iloc[0])
    fields = fields_of(rows)
    table = Table(title=f"best trials by {metric} ({_LABEL}), of {len(rows)}")
    for column in ("trial", *fields, metric, "status", "last step"):
        table.add_column(column, justify="left" if column in ("trial", "status") else "right")
    for _, row in ranked(rows).head(limit).iterrows():
        recipe = recipe_of(row)
        table.add_row(
            str(row["trial_id"]),
            *(_shown(recipe.get(f, "")) for f in fields),
            f"{float(row['value']):.4f}",
            str(row["status"]),
            f"{int(row['last_step'])}/{int(row['steps'])}",
        )
    return table


def searches_table(searches: Mapping[str, pd.DataFrame]) -> Table:
    """One line per recipe search (`harness status`): its trials by status and its best finished
    trial so far, judged as the search judges them (the validation metric, never the test set)."""
    table = Table(title=f"recipe searches (harness tune; {_LABEL})")
    for column in ("search", "trials", "finished", "stopped", "failed", "metric", "best", "best recipe"):
        table.add_column(column, justify="left" if column in ("search", "metric", "best recipe") else "right")
    for name, rows in searches.items():
        counts = rows["status"].value_counts()
        finished = ranked(rows[rows["status"] == STATUS_FINISHED])
        best = finished.iloc[0] if not finished.empty else None
        table.add_row(
            name,
            str(len(rows)),
            *(str(int(counts.get(status, 0))) for status in (STATUS_FINISHED, STATUS_STOPPED, STATUS_FAILED)),
            str(rows["metric"].iloc[0]) if not rows.empty else "",
            "-" if best is None else f"{float(best['value']):.4f}",
            "-" if best is None else ", ".join(f"{k}={_shown(v)}" for k, v in recipe_of(best).items()),
        )
    return table


def field_effects(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """Per searched field, what goes with a better metric: a numeric field's Spearman rank
    correlation with the metric over the trials with a finite value, a categorical field's mean
    metric per value."""
    out: list[tuple[str, str]] = []
    values = rows["value"].astype(float)
    for name in fields_of(rows):
        column: list[Any] = [recipe_of(row).get(name) for _, row in rows.iterrows()]
        keep = [i for i, v in enumerate(values) if math.isfinite(v) and column[i] is not None]
        if all(isinstance(column[i], int | float) and not isinstance(column[i], bool) for i in keep) and len(keep) >= 3:
            xs = pd.Series([_number(column[i]) for i in keep]).rank()
            ys = pd.Series([values.iloc[i] for i in keep]).rank()
            rho = float(xs.corr(ys))
            out.append((name, f"Spearman ρ = {rho:+.2f} over {len(keep)} trials" if math.isfinite(rho) else "no spread"))
        else:
            means = pd.Series([values.iloc[i] for i in keep]).groupby([str(column[i]) for i in keep]).mean()
            out.append((name, ", ".join(f"{k}: {v:.4f}" for k, v in means.items()) or "no finite value"))
    return out


def stopped_line(rows: pd.DataFrame) -> str:
    stopped = rows[rows["status"] == STATUS_STOPPED]
    if stopped.empty:
        return f"the scheduler stopped none of the {len(rows)} trials"
    steps = sorted(int(s) for s in stopped["stopped_at_step"])
    counts = pd.Series(steps).value_counts().sort_index()
    return (
        f"the scheduler stopped {len(stopped)} of {len(rows)} trials early: "
        + ", ".join(f"{n} at step {s}" for s, n in counts.items())
        + f" (of {int(rows['steps'].max())})"
    )


def renderables(rows: pd.DataFrame, name: str) -> list[Table | str]:
    """The terminal view of one search's trials."""
    if rows.empty:
        return [f"search {name}: no trial committed yet"]
    effects = Table(title=f"each searched field against {rows['metric'].iloc[0]} ({_LABEL})")
    effects.add_column("field")
    effects.add_column("with the metric")
    for field, text in field_effects(rows):
        effects.add_row(field, text)
    revisions = sorted({int(r) for r in rows["revision"]})
    return [
        best_table(rows),
        effects,
        stopped_line(rows),
        f"search {name}: revision {', '.join(map(str, revisions))}; {rows['evaluated_on'].iloc[0]}",
    ]


def _scatter_svg(xs: Sequence[float], ys: Sequence[float], stopped: Sequence[bool], x_label: str, y_label: str) -> str:
    """A small scatter chart as inline SVG: one dot per trial (hollow: stopped early); a log x axis
    when the values span more than a factor of 20."""
    width, height, pad = 260, 180, 34
    points = [(x, y, s) for x, y, s in zip(xs, ys, stopped) if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return f"<p>{html.escape(x_label)}: no finite point</p>"
    log = min(p[0] for p in points) > 0 and max(p[0] for p in points) / min(p[0] for p in points) > 20
    tx = [math.log10(p[0]) if log else p[0] for p in points]
    ty = [p[1] for p in points]

    def scale(v: float, lo: float, hi: float, size: int) -> float:
        return pad + (v - lo) / (hi - lo) * (size - 2 * pad) if hi > lo else size / 2

    x_lo, x_hi, y_lo, y_hi = min(tx), max(tx), min(ty), max(ty)
    dots = "".join(
        f'<circle cx="{scale(x, x_lo, x_hi, width):.1f}" cy="{height - scale(y, y_lo, y_hi, height):.1f}" r="4" '
        f'fill="{"none" if s else "#1f77b4"}" stroke="#1f77b4"/>'
        for x, y, (_, _, s) in zip(tx, ty, points)
    )
    ticks = (
        f'<text x="{pad}" y="{height - 6}" font-size="10">{_shown(10**x_lo if log else x_lo)}</text>'
        f'<text x="{width - pad}" y="{height - 6}" font-size="10" text-anchor="end">{_shown(10**x_hi if log else x_hi)}</text>'
        f'<text x="2" y="{height - pad}" font-size="10">{y_lo:.3f}</text><text x="2" y="{pad}" font-size="10">{y_hi:.3f}</text>'
    )
    title = f"{x_label}{' (log)' if log else ''} against {y_label}"
    return (
        f'<figure><svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
        f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#ccc"/>'
        f"{dots}{ticks}</svg><figcaption>{html.escape(title)}</figcaption></figure>"
    )


def html_page(rows: pd.DataFrame, name: str) -> str:
    """A self-contained page: the best trials, one chart per searched field against the metric
    (hollow dots: stopped early), the scheduler's stops and each trial's validation curve's end."""
    metric = str(rows["metric"].iloc[0]) if not rows.empty else "metric"
    parts = [f"<h1>Search {html.escape(name)}</h1>", f"<p><b>{html.escape(_LABEL)}</b>: never a test score.</p>"]
    if rows.empty:
        parts.append("<p>No trial committed yet.</p>")
    else:
        fields = fields_of(rows)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ("trial", *fields, metric, "status", "last step"))
        body = ""
        for _, row in ranked(rows).iterrows():
            recipe = recipe_of(row)
            cells = [str(row["trial_id"]), *(_shown(recipe.get(f, "")) for f in fields), f"{float(row['value']):.4f}"]
            cells += [str(row["status"]), f"{int(row['last_step'])}/{int(row['steps'])}"]
            body += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        parts.append(f"<h2>Trials, best first</h2><table><tr>{head}</tr>{body}</table>")
        parts.append(f"<p>{html.escape(stopped_line(rows))}</p><h2>Each field against {html.escape(metric)}</h2><div>")
        stopped = [s == STATUS_STOPPED for s in rows["status"]]
        for field in fields:
            xs = [_number(recipe_of(row).get(field)) for _, row in rows.iterrows()]
            parts.append(_scatter_svg(xs, [float(v) for v in rows["value"]], stopped, field, metric))
        parts.append("</div><h2>Validation curves</h2><ul>")
        for _, row in ranked(rows).iterrows():
            points = ", ".join(f"{step}: {_pick(metric, p)}" for step, *p in curve_of(row))
            parts.append(f"<li>{html.escape(str(row['trial_id']))}: {html.escape(points)}</li>")
        parts.append("</ul>")
    style = "body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}figure{display:inline-block}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Search {html.escape(name)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _pick(metric: str, point: Sequence[float]) -> str:
    value = dict(zip(("image_auroc", "pixel_auroc", "loss"), point)).get(metric, math.nan)
    return f"{value:.4f}"


def write_page(rows: pd.DataFrame, name: str, path: Path) -> Path:
    return write_text_atomic(path, html_page(rows, name))
