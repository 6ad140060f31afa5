"""Result tables as papers print them (`harness report --layout paper`): one table per headline
metric of the data set, the categories as columns in the order of the data set's paper (MVTec AD:
the five textures, then the ten objects), the average as the FIRST column, one row per ablation or
recipe variant (mean ± std over seeds), and the published row above ours where one exists; written
as Markdown, LaTeX (booktabs, the best row of each column in bold) or CSV.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.reference import PAPER, TOOTOUCH, Reference
from harness.report import AVERAGE, aggregate, groups_of, headline_metrics
from harness.store import group_label
from harness.tables import TableData, to_markdown
from memseg.data.registry import get_dataset

FORMATS = ("markdown", "latex", "csv")
AVERAGE_LABEL = "Average"


@dataclass(frozen=True)
class Cell:
    """A mean and its std over seeds (percent; std NaN with one seed), or an empty cell."""

    mean: float = math.nan
    std: float = math.nan

    @property
    def empty(self) -> bool:
        return math.isnan(self.mean)

    def text(self) -> str:
        if self.empty:
            return "—"
        return f"{self.mean:.2f}" if math.isnan(self.std) else f"{self.mean:.2f} ± {self.std:.2f}"


@dataclass(frozen=True)
class PaperRow:
    label: str
    cells: tuple[Cell, ...]
    published: bool = False  # a published row: printed above ours, never ours


@dataclass(frozen=True)
class PaperTable:
    """One metric: `columns` are "Average" then the categories in paper order."""

    metric: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[PaperRow, ...]
    caption: str


def category_columns(dataset: str, present: list[str]) -> list[str]:
    """The categories of the rows in the order of the data set's paper (registry: `paper_order`),
    then any other (folder data) by name."""
    order = get_dataset(dataset).paper_order if dataset else ()
    return [c for c in order if c in present] + sorted(c for c in present if c not in order)


def paper_tables(rows: pd.DataFrame, sweep: str = "") -> list[PaperTable]:
    """One table per headline metric of the rows' data set (harness.report.headline_metrics)."""
    agg = aggregate(rows)
    if agg.empty:
        return []
    datasets = sorted(set(rows["dataset"].dropna()))
    dataset = datasets[0] if len(datasets) == 1 else ""
    categories = category_columns(dataset, [c for c in agg["category"].unique() if c != AVERAGE])
    columns = (AVERAGE_LABEL, *categories)
    out = []
    for metric, label in headline_metrics(rows).items():
        body: list[PaperRow] = []
        references = _published(metric) if dataset == "mvtec" else []
        for reference in references:
            values = getattr(reference, metric)
            cells = [Cell(values.get("average", math.nan))] + [Cell(values.get(c, math.nan)) for c in categories]
            body.append(PaperRow(f"MemSeg ({reference.label})", tuple(cells), published=True))
        for ablation, variant in groups_of(agg):
            part = agg[(agg["ablation"] == ablation) & (agg["variant"] == variant)].set_index("category")
            cells = [_cell(part, AVERAGE, metric)] + [_cell(part, c, metric) for c in categories]
            body.append(PaperRow(group_label(ablation, variant), tuple(cells)))
        caption = f"{label} in percent, mean ± std over seeds; the average is the mean of the category means."
        caption += "".join(f" {reference.note}" for reference in references)
        title = " · ".join(p for p in (sweep, label) if p)
        out.append(PaperTable(metric, title, columns, tuple(body), caption))
    return out


def _published(metric: str) -> list[Reference]:
    """The published MemSeg rows of this metric on MVTec AD (harness.reference): the paper's averages
    and TooTouch's re-implementation per category, for image and pixel AUROC only."""
    return [PAPER, TOOTOUCH] if metric in ("image_auroc", "pixel_auroc") else []


def _cell(part: pd.DataFrame, category: str, metric: str) -> Cell:
    if category not in part.index:
        return Cell()
    row: dict[Any, Any] = part.loc[category].to_dict()  # one category, one row
    return Cell(float(row[f"{metric}_mean"]), float(row[f"{metric}_std"])) if row["n"] else Cell()


def _best(table: PaperTable) -> list[float]:
    """The highest mean of each column (every headline metric is higher-is-better), NaN when empty."""
    best = []
    for k in range(len(table.columns)):
        means = [r.cells[k].mean for r in table.rows if not r.cells[k].empty]
        best.append(max(means) if means else math.nan)
    return best


def to_table_data(table: PaperTable) -> TableData:
    return TableData(
        table.title,
        ("", *table.columns),
        tuple((r.label, *(c.text() for c in r.cells)) for r in table.rows),
        table.caption,
    )


def to_latex(table: PaperTable) -> str:
    """booktabs: \\toprule, \\midrule between the published rows and ours, \\bottomrule; the best mean
    of each column in bold (ties: every row that reaches it)."""
    best = _best(table)
    spec = "l" + "c" * len(table.columns)
    head = " & ".join(["", *(_latex_escape(c) for c in table.columns)]) + r" \\"
    lines = [
        f"% {_latex_escape(table.title)}",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_latex_escape(table.caption)}}}",
        r"\resizebox{\textwidth}{!}{%",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        head,
        r"\midrule",
    ]
    for i, row in enumerate(table.rows):
        cells = []
        for k, cell in enumerate(row.cells):
            text = _latex_escape(cell.text())
            cells.append(rf"\textbf{{{text}}}" if not cell.empty and cell.mean == best[k] else text)
        lines.append(" & ".join([_latex_escape(row.label), *cells]) + r" \\")
        if row.published and i + 1 < len(table.rows) and not table.rows[i + 1].published:
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: PaperTable) -> str:
    """One line per row: the metric, the row's label, then a mean and a std column per column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "row", *(f"{c}{suffix}" for c in table.columns for suffix in ("", " std"))])
    for row in table.rows:
        values = [_number(v) for c in row.cells for v in (c.mean, c.std)]
        writer.writerow([table.metric, row.label, *values])
    return out.getvalue()


def render(tables: list[PaperTable], fmt: str) -> str:
    """Every table in one format (FORMATS)."""
    if fmt == "latex":
        return "\n".join(to_latex(t) for t in tables)
    if fmt == "csv":
        return "".join(to_csv(t) if i == 0 else to_csv(t).split("\n", 1)[1] for i, t in enumerate(tables))
    return "\n".join(to_markdown(to_table_data(t)) for t in tables)


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}"}


def _latex_escape(text: str) -> str:
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return escaped.replace("~", r"\textasciitilde{}").replace("^", r"\^{}").replace("±", r"$\pm$")
