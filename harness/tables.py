"""Tables as plain cells (`TableData`), rendered to rich or Markdown, and the order rows are shown
in; a leaf that the report, the comparison views and the CLIs all import.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from memseg.ablations import ABLATIONS
from memseg.names import CATEGORIES


@dataclass(frozen=True)
class TableData:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    bold_last_row: bool = False
    left_columns: int = 1  # leading text columns; the rest are numbers, aligned right


def category_order(names: list[str]) -> list[str]:
    """Known categories in their canonical order, then the others by name."""
    known = [c for c in CATEGORIES if c in names]
    return known + sorted(n for n in names if n not in CATEGORIES)


def ablation_order(names: list[str]) -> list[str]:
    """Known ablations in their canonical order (full first), then the others by name."""
    known = [a for a in ABLATIONS if a in names]
    return known + sorted(n for n in names if n not in ABLATIONS)


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
