"""One self-contained HTML page per sweep: the summary tables, bar charts, ROC and PRO curves,
prediction panels and GIFs, failed jobs and provenance. It opens from disk with no server and no
network: every picture is inlined as a data: URI, and the CSS and the one script are inline.

The tables are `harness.report.summary_tables`, the same cells that `report --markdown` prints.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from harness import compare_view, curves_view, paths, report, revisions, store, tables
from harness.reference import PAPER, TOOTOUCH, Reference
from harness.visuals_store import StoredVisuals, load_visuals
from memseg.atomic import write_text_atomic
from memseg.clock import utc_now
from memseg.curves import TrainingCurves
from memseg.result import METRICS

_LINESTYLES = ("-", "--", ":", "-.")
# Counts the pictures that failed to decode once the page has loaded, for browser checks:
# <body data-images="N" data-broken-images="K">.
_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.images, broken = 0;
  for (var i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) { broken++; }
  }
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-broken-images", String(broken));
});
"""
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 1400px;
       padding: 0 16px; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 4px; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
h3 { margin: 20px 0 8px; } nav a { margin-right: 14px; } .meta { color: #555; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 8px; white-space: nowrap; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 700; border-top: 2px solid #bbb; } td.up { color: #137a2a; } td.down { color: #b3261e; }
td.error { white-space: normal; max-width: 640px; font-family: ui-monospace, monospace; font-size: 12px; }
.caption { color: #555; font-size: 12px; margin: 2px 0 18px; }
.warning { background: #fff4e5; border-left: 4px solid #e67e00; padding: 8px 12px; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: flex-start; }
.charts img { max-width: 100%; } .curves img { max-width: 100%; display: block; margin: 6px 0 14px; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 12px; color: #444; max-width: 520px; }
details { margin: 6px 0 10px; } summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f6f8; padding: 8px; overflow-x: auto; font-size: 12px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 3px 16px; } dt { font-weight: 600; } dd { margin: 0; }
"""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def write_report(
    results_dir: str | Path,
    sweep: str,
    path: str | Path | None = None,
    price_per_gpu_hour: float | None = None,
    revision: int | None = None,
    *,
    rows: pd.DataFrame | None = None,
) -> Path:
    """Build the sweep's report and write it (default <results>/<sweep>/report.html); the path.
    `rows`: the sweep's rows as the caller loaded them (None: read them here)."""
    out = Path(path) if path is not None else paths.report_path(results_dir, sweep)
    return write_text_atomic(out, build_report(results_dir, sweep, price_per_gpu_hour, revision, rows=rows))


def build_report(
    results_dir: str | Path,
    sweep: str,
    price_per_gpu_hour: float | None = None,
    revision: int | None = None,
    *,
    rows: pd.DataFrame | None = None,
) -> str:
    """The whole page as one string (with a cost column in the GPU-time table at `price_per_gpu_hour`),
    of the rows of `revision` alone when given. Rows of several revisions: MixedRevisions
    (harness.revisions), never one page that averages them."""
    rows = store.load_results(results_dir, sweep) if rows is None else rows
    folder = sweep  # the sweep's folder name (`sweep` below may become a label)
    if revision is not None:
        rows = rows[rows["revision"] == revision]
        sweep = f"{sweep} · revision {revision}"
    revisions.split(rows, what=f"sweep {sweep!r}")
    ok = store.ok_rows(rows)
    visuals = {job_id: v for job_id in ok["job_id"] if (v := load_visuals(results_dir, folder, job_id)) is not None}
    sections = [
        ("summary", "Summary", _summary_section(rows, sweep, price_per_gpu_hour)),
        ("charts", "Metrics by category", _charts_section(rows)),
        ("comparisons", "Is the difference real?", _comparisons_section(rows)),
        ("curves", "ROC and PRO curves", _curves_section(ok, visuals)),
        ("predictions", "Predictions", _predictions_section(ok, visuals)),
        ("training", "Training curves", _training_section(ok, curves_view.load_all(results_dir, folder, list(ok["job_id"])))),
        ("failed", "Failed jobs", _failed_section(rows)),
        ("provenance", "Provenance", _provenance_section(rows, store.read_spec(results_dir, folder))),
    ]
    tally = store.Tally.of(rows["job_id"], store.states_of(rows), accept_revisions=set(rows["revision"]))
    generated = utc_now()
    meta = (
        f"{len(rows)} job(s): {len(tally.done)} ok, {len(tally.failed)} failed"
        f" · profile {_joined(rows['profile'])} · data {_joined(rows['dataset'])} · generated {generated}"
    )
    nav = " ".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
    body = "\n".join(f'<section id="{key}">\n<h2>{title}</h2>\n{content}\n</section>' for key, title, content in sections)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>memseg-bench · {_e(sweep)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>memseg-bench · {_e(sweep)}</h1>\n<p class="meta">{_e(meta)}</p>\n<nav>{nav}</nav></header>\n'
        f"{body}\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def table_html(table: tables.TableData) -> str:
    """A `TableData` as an HTML table: text columns left, numbers right, the last row bold when
    it is a total, differences ("Δ" columns) green when positive and red when negative."""
    head = "".join(f"<th>{_e(h)}</th>" for h in table.headers)
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for k, cell in enumerate(row):
            classes = []
            if k >= table.left_columns:
                classes.append("num")
            elif table.left_columns > 1 and k == len(row) - 1:
                classes.append("error")
            if k < len(table.headers) and table.headers[k] == "Δ" and cell[:1] in "+-" and cell:
                classes.append("up" if cell.startswith("+") else "down")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{_e(cell)}</td>")
        total = ' class="total"' if table.bold_last_row and i == len(table.rows) - 1 else ""
        body.append(f"<tr{total}>{''.join(cells)}</tr>")
    caption = "<br>".join(_e(line) for line in table.caption.splitlines())
    return (
        f"<table>\n<caption>{_e(table.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{chr(10).join(body)}\n</tbody>\n</table>\n" + (f'<p class="caption">{caption}</p>\n' if caption else "")
    )


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _summary_section(rows: pd.DataFrame, sweep: str, price_per_gpu_hour: float | None = None) -> str:
    box = "".join(f'<p class="warning">Warning: {_e(w)}</p>\n' for w in (report.caveat(rows), revisions.dirty_warning(rows)) if w)
    return box + "\n".join(table_html(t) for t in report.summary_tables(rows, sweep, price_per_gpu_hour))


def _charts_section(rows: pd.DataFrame) -> str:
    agg = report.aggregate(rows)
    agg = agg[agg["n"] > 0]
    if agg.empty:
        return "<p>No finished job yet.</p>"
    mvtec = set(rows["dataset"].dropna().unique()) == {"mvtec"}
    references = {"image_auroc": "image_auroc", "pixel_auroc": "pixel_auroc"} if mvtec else {}
    parts = []
    for metric, label in report.headline_metrics(rows).items():  # the data set's headline metrics, as the tables
        figure = _bar_chart(agg, metric, label, references.get(metric))
        parts.append(_img(_png(figure), f"{label} by category"))
    note = (
        "Bars: mean over seeds, whiskers: ±std. Markers on the full model: published numbers "
        f"({PAPER.label}: MVTec AD average only; {TOOTOUCH.label}: best checkpoint picked on the test set)."
        if mvtec
        else "Bars: mean over seeds, whiskers: ±std. Published numbers are for MVTec AD and are not shown for this data."
    )
    return f'<div class="charts">{"".join(parts)}</div>\n<p class="caption">{_e(note)}</p>'


def _comparisons_section(rows: pd.DataFrame) -> str:
    """Each ablation against full: a forest plot (difference and interval per category) and the
    tables of `python -m harness compare`."""
    parts = compare_view.report_section_parts(rows, METRICS)
    if isinstance(parts, str):
        return f"<p>{_e(parts)}</p>"
    out = []
    for comparison, shown, figure in parts:
        anchor = re.sub(r"[^A-Za-z0-9_.-]+", "-", comparison.name)  # unique: a name per comparison, no spaces
        out.append(f'<h3 id="compare-{_e(anchor)}">{_e(comparison.name)}</h3>')
        out.append(_img(_png(figure), f"{comparison.name}: difference and interval per category"))
        out += [table_html(t) for t in shown]
    return "\n".join(out)


def _curves_section(ok: pd.DataFrame, visuals: dict[str, StoredVisuals]) -> str:
    parts = []
    for category in _categories(ok):
        jobs = _jobs_with_visuals(ok[ok["category"] == category], visuals)
        if not jobs:
            continue
        parts.append(f'<h3 id="curves-{_e(category)}">{_e(category)}</h3>')
        parts.append(_img(_png(_curves_figure(category, jobs, visuals)), f"{category}: ROC and PRO curves"))
    if not parts:
        return "<p>No curves: no finished job saved visuals.</p>"
    caption = (
        "One line per job (colour: ablation and recipe variant, line style: seed); the legend gives the metric of that run in percent. "
        "PRO: per-region overlap against the pooled false positive rate, shown up to 0.3, the range AUPRO@0.3 integrates."
    )
    return f'<div class="curves">{"".join(parts)}</div>\n<p class="caption">{_e(caption)}</p>'


def _training_section(ok: pd.DataFrame, curves: dict[str, TrainingCurves]) -> str:
    """Per category, every job's training loss on one chart (and the validation curve on simulated
    anomalies, when recorded), then one small chart per job, folded."""
    parts = []
    for category in _categories(ok):
        jobs = _jobs_with_visuals(ok[ok["category"] == category], curves)
        if jobs:
            charts = "".join(
                _img(_png(curves_view.job_figure(r, curves[r.job_id])), f"{r.job_id}: training curves") for r in jobs
            )
            parts.append(f'<h3 id="training-{_e(category)}">{_e(category)}</h3>')
            parts.append(_img(_png(curves_view.category_figure(category, jobs, curves)), f"{category}: training curves"))
            parts.append(
                f'<details><summary>one chart per job ({len(jobs)})</summary><div class="charts">{charts}</div></details>'
            )
    if not parts:
        return "<p>No training curves: no finished job recorded them.</p>"
    return f'<div class="curves">{"".join(parts)}</div>\n<p class="caption">{_e(curves_view.HTML_CAPTION)}</p>'


def _predictions_section(ok: pd.DataFrame, visuals: dict[str, StoredVisuals]) -> str:
    """Per category, the lowest-seed job of each ablation: its GIF and panels (first ablation
    open, the others folded)."""
    parts = []
    for category in _categories(ok):
        jobs = _jobs_with_visuals(ok[ok["category"] == category], visuals)
        shown: dict[str, Any] = {}
        for row in jobs:
            shown.setdefault(_group(row), row)
        if not shown:
            continue
        parts.append(f'<h3 id="predictions-{_e(category)}">{_e(category)}</h3>')
        for k, row in enumerate(shown.values()):
            v = visuals[row.job_id]
            figures = []
            if v.gif is not None:
                figures.append(_figure(v.gif, "image/gif", f"{len(v.gif_paths)} test images and their heatmaps"))
            for panel in v.panels:
                text = f"{panel.role}: {_tail(panel.path)} (label {'anomalous' if panel.label else 'normal'}, score {panel.score:.3f})"
                figures.append(_figure(panel.file, "image/png", text))
            summary = f"{_group(row)} · seed {row.seed} · {row.job_id}"
            threshold = f"; mask threshold {v.threshold:.3f} (pixel F1-max)" if v.threshold is not None else ""
            parts.append(
                f"<details{' open' if k == 0 else ''}><summary>{_e(summary)}</summary>\n"
                f'<p class="caption">Columns: {_e(" | ".join(v.columns))}{_e(threshold)}.</p>\n'
                f'<div class="gallery">{"".join(figures)}</div></details>'
            )
    if not parts:
        return "<p>No pictures: no finished job saved visuals.</p>"
    intro = (
        "Per category, the lowest seed of each ablation (and recipe variant). Worst false positive: the normal test image with the "
        "highest image score; worst false negative: the anomalous one with the lowest; typical: the median-scoring "
        "image of a defect type. The mask column is the map thresholded at the pixel F1-max threshold."
    )
    return f'<p class="caption">{_e(intro)}</p>\n' + "\n".join(parts)


def _failed_section(rows: pd.DataFrame) -> str:
    failed = store.failed_rows(rows).sort_values("job_id")
    if failed.empty:
        return "<p>None: every job finished.</p>"
    items = []
    for r in store.records(failed):
        head = f"{r.job_id} ({r.category}, seed {r.seed}, {_group(r)}, {r.attempts} attempt(s)): {r.error or ''}"
        trace = r.traceback or "(no traceback recorded)"
        items.append(
            f"<details><summary>{_e(head.splitlines()[0])}</summary><pre>{_e(str(r.error or ''))}\n\n{_e(trace)}</pre></details>"
        )
    return (
        "<p>The summary lists them with the first line of their error; the full error and traceback are below. "
        "Re-run them with <code>python -m harness run ... --retry-failed</code>.</p>\n" + "\n".join(items)
    )


def _provenance_section(rows: pd.DataFrame, spec_text: str | None) -> str:
    facts = [
        ("revision", _counted(rows["revision"].astype(str))),
        ("git sha", _counted(rows["git_sha"], empty="(not a git checkout)")),
        ("uncommitted changes", _counted(rows["git_dirty"].map({True: "yes", False: "no"}).fillna(""), empty="(not recorded)")),
        ("package version", _counted(rows["package_version"], empty="(not recorded)")),
        ("torch", _counted(rows["torch"])),
        ("CUDA", _counted(rows["cuda"], empty="(none)")),
        ("timm", _counted(rows["timm"])),
        ("python", _counted(rows["python"])),
        ("devices", _counted(rows["device_name"].where(rows["device_name"] != "", rows["device"]))),
        ("nodes", _counted(rows["node"])),
        (
            "job time",
            f"{_seconds(rows['wall_s'].sum())} in all ({len(rows)} jobs; median {_seconds(rows['wall_s'].median())} per job)",
        ),
        ("sweep wall time", _span(rows)),
    ]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    rows = rows.assign(variant=store.variants_of(rows))
    variant = bool((rows["variant"] != "").any())  # a column only when rows have recipe variants
    per_job = tables.TableData(
        "per job",
        ("job", "category", "seed", "ablation", *(("variant",) if variant else ()), "status", "attempts", "node", "device")
        + ("wall s", "train s", "eval s", "img/s"),
        tuple(
            (
                r.job_id,
                r.category,
                str(r.seed),
                r.ablation,
                *((r.variant,) if variant else ()),
                r.status,
                _int(r.attempts),
                r.node or "",
                r.device_name or r.device or "",
                _fixed(r.wall_s),
                _fixed(r.train_s),
                _fixed(r.eval_s),
                _fixed(r.infer_images_per_s),
            )
            for r in store.records(rows.sort_values(["category", "ablation", "variant", "seed"]))
        ),
        "wall s: from submission to the result on the driver, retries included; train s and eval s as the job timed them.",
        left_columns=9 if variant else 8,
    )
    spec = f"<details><summary>sweep.yaml</summary><pre>{_e(spec_text)}</pre></details>" if spec_text else ""
    return f"<dl>{dl}</dl>\n{table_html(per_job)}\n{spec}"


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _bar_chart(agg: pd.DataFrame, metric: str, label: str, reference_metric: str | None) -> Figure:
    """Categories along x (the average last), one bar per ablation (and recipe variant), ±std whiskers."""
    groups = list(dict.fromkeys(zip(agg["ablation"], agg["variant"])))
    categories = tables.category_order([c for c in agg["category"].unique() if c != report.AVERAGE]) + [report.AVERAGE]
    width = 0.8 / len(groups)
    figure = Figure(figsize=(max(4.6, 0.5 * len(categories) * len(groups) ** 0.5 + 1.5), 3.2))
    ax = figure.add_subplot()
    values = []
    for k, (ablation, variant) in enumerate(groups):
        part = agg[(agg["ablation"] == ablation) & (agg["variant"] == variant)].set_index("category")
        means = [part[f"{metric}_mean"].get(c, math.nan) for c in categories]
        stds = [part[f"{metric}_std"].get(c, math.nan) for c in categories]
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(categories))]
        ax.bar(
            xs,
            means,
            width * 0.92,
            yerr=[0 if math.isnan(s) else s for s in stds],
            capsize=2,
            label=store.group_label(ablation, variant),
            color=f"C{k}",
            error_kw={"elinewidth": 0.8},
        )
        values += [m for m in means if not math.isnan(m)]
    if reference_metric is not None and any(a == "full" for a, _ in groups):
        k = next(i for i, (a, _) in enumerate(groups) if a == "full")
        for marker, ref in (("D", PAPER), ("_", TOOTOUCH)):
            xs, ys = _reference_points(ref, reference_metric, categories, k, width)
            if xs:
                ax.scatter(
                    xs,
                    ys,
                    marker=marker,
                    s=60 if marker == "_" else 18,
                    color="black",
                    zorder=3,
                    linewidths=1.6,
                    label=_reference_label(ref),
                )
                values += ys
    if not values:
        values = [0.0, 100.0]
    low = max(0.0, 10 * math.floor((min(values) - 2) / 10))
    ax.set_ylim(low, min(100.0, max(values)) + 1.5)
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{label} (%)")
    ax.set_title(f"{label} by category" + (f" (axis from {low:g})" if low > 0 else ""), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure


def _reference_points(
    ref: Reference, metric: str, categories: Sequence[str], k: int, width: float
) -> tuple[list[float], list[float]]:
    values = getattr(ref, metric)
    points = [(i - 0.4 + width * (k + 0.5), values[c]) for i, c in enumerate(categories) if c in values]
    return [x for x, _ in points], [y for _, y in points]


def _reference_label(ref: Reference) -> str:
    return f"{ref.label} (average)" if ref is PAPER else f"{ref.label} (best on test set)"


def _curves_figure(category: str, jobs: list, visuals: dict[str, StoredVisuals]) -> Figure:
    """Image ROC, pixel ROC and PRO (up to FPR 0.3) of every job of a category."""
    panels = (
        ("image_roc", "tpr", "image ROC", "image_auroc", "false positive rate (images)", "true positive rate"),
        ("pixel_roc", "tpr", "pixel ROC", "pixel_auroc", "false positive rate (pixels)", "true positive rate"),
        ("pro", "pro", "per-region overlap", "pixel_aupro", "false positive rate (pixels)", "PRO"),
    )
    figure = Figure(figsize=(12, 3.4))
    groups = list(dict.fromkeys(_group(r) for r in jobs))
    seeds = sorted({int(r.seed) for r in jobs})
    for k, (key, y_key, title, metric, xlabel, ylabel) in enumerate(panels):
        ax = figure.add_subplot(1, 3, k + 1)
        drawn = 0
        for row in jobs:
            curve = visuals[row.job_id].curves.get(key)
            if not curve:
                continue
            value = getattr(row, metric)
            label = f"{_group(row)} s{row.seed}" + ("" if value is None or math.isnan(value) else f" ({100 * value:.1f})")
            ax.plot(
                curve["fpr"],
                curve[y_key],
                label=label,
                color=f"C{groups.index(_group(row))}",
                linestyle=_LINESTYLES[seeds.index(int(row.seed)) % len(_LINESTYLES)],
                linewidth=1.2,
            )
            drawn += 1
        if key == "pro":
            ax.set_xlim(0, 0.3)
        else:
            ax.plot([0, 1], [0, 1], color="grey", linewidth=0.6, linestyle=":")
            ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{category}: {title}" if drawn else f"{category}: {title} (no masks)", fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{_data_uri(png, "image/png")}" alt="{_e(alt)}">'


def _figure(file: Path, mime: str, caption: str) -> str:
    try:
        data = file.read_bytes()
    except OSError as err:
        raise ValueError(f"picture {file} of the report is unreadable ({err}); re-run its job with --force") from None
    return f'<figure><img src="{_data_uri(data, mime)}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _tail(path: str, parts: int = 3) -> str:
    """The end of a test image's path (test/<defect type>/<file>): the worker's mount point says nothing."""
    return "/".join(path.replace("\\", "/").split("/")[-parts:])


def _categories(rows: pd.DataFrame) -> list[str]:
    return tables.category_order(list(rows["category"].unique()))


def _jobs_with_visuals(rows: pd.DataFrame, visuals: Mapping[str, object]) -> list:
    """Rows with visuals, in canonical ablation order, then by recipe variant, then by seed."""
    order = tables.ablation_order(list(rows["ablation"].unique()))
    ranked = sorted(store.records(rows), key=lambda r: (order.index(r.ablation), _variant(r), int(r.seed)))
    return [r for r in ranked if r.job_id in visuals]


def _variant(row: Any) -> str:
    """A stored row's recipe variant ("" in frames without the column)."""
    return str(getattr(row, "variant", "") or "")


def _group(row: Any) -> str:
    return store.group_label(row.ablation, _variant(row))


def _joined(values: Iterable) -> str:
    distinct = sorted({str(v) for v in values if v is not None and str(v) != ""})
    return ", ".join(distinct) or "?"


def _counted(values: pd.Series, empty: str = "?") -> str:
    counts = values.fillna("").astype(str).value_counts()
    return ", ".join(f"{k or empty} ({n} job{'s' if n != 1 else ''})" for k, n in counts.items()) or empty


def _seconds(value: float) -> str:
    if value is None or math.isnan(value):
        return "?"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _span(rows: pd.DataFrame) -> str:
    """From the first job's start to the last job's end, as the rows recorded them."""
    started = pd.to_datetime(rows["started_at"].replace("", None), errors="coerce", utc=True, format="ISO8601").dropna()
    finished = pd.to_datetime(rows["finished_at"].replace("", None), errors="coerce", utc=True, format="ISO8601").dropna()
    if started.empty or finished.empty:
        return "?"
    return f"{_seconds((finished.max() - started.min()).total_seconds())} (from {started.min().isoformat()} to {finished.max().isoformat()})"


def _fixed(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1f}"


def _int(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(int(value))
