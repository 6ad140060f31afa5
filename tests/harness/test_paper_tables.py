"""`harness report --layout paper`: one table per headline metric, the categories as columns in the
paper's order with the average first, a row per ablation or variant, the published row above ours;
Markdown, LaTeX (booktabs, best in bold) and CSV."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from harness import paper_tables, store
from harness.paper_tables import AVERAGE_LABEL
from memseg.data.registry import get_dataset
from tests.harness.conftest import run_cli
from tests.harness.fakes import fake_result

MVTEC_PAPER_ORDER = (
    "carpet", "grid", "leather", "tile", "wood",
    "bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper",
)  # fmt: skip


def _rows(categories, dataset="mvtec", ablations=("full", "no_memory"), seeds=(0, 1)) -> pd.DataFrame:
    rows = []
    for ablation in ablations:
        for seed in seeds:
            for i, category in enumerate(categories):
                row = store.empty_row()
                value = 0.80 + 0.01 * i + (0.05 if ablation == "full" else 0.0) + 0.002 * seed
                row.update(
                    job_id=f"{category}-{ablation}-{seed}", category=category, ablation=ablation, seed=seed, status="ok",
                    dataset=dataset, scoring=get_dataset(dataset).scoring, image_auroc=value, pixel_auroc=value,
                    pixel_f1=0.5, pixel_aupro=0.6, pixel_aupro_low=0.3, seg_f1=0.2, attempts=1,
                )  # fmt: skip
                rows.append(row)
    return pd.DataFrame(rows)


def test_a_15_category_mvtec_sweep_has_exactly_the_papers_columns_in_order() -> None:
    rows = _rows(sorted(MVTEC_PAPER_ORDER))  # stored in another order
    tables = paper_tables.paper_tables(rows, "s")
    assert [t.metric for t in tables] == ["image_auroc", "pixel_auroc", "pixel_f1", "pixel_aupro"]  # one per headline metric
    for table in tables:
        assert table.columns == (AVERAGE_LABEL, *MVTEC_PAPER_ORDER)
    image = tables[0]
    assert [r.label for r in image.rows] == ["MemSeg (paper)", "MemSeg (TooTouch†)", "full", "no_memory"]  # published above
    assert image.rows[0].cells[0].text() == "99.56" and image.rows[0].cells[1].text() == "—"  # the paper: its average only
    full = image.rows[2].cells
    # carpet is index 3 in sorted order: 0.80 + 0.03 + 0.05 + seeds 0.000 / 0.002 -> 88.10 ± 0.14
    assert full[1].text() == "88.10 ± 0.14"

    markdown = paper_tables.render(tables, "markdown")
    header = next(line for line in markdown.splitlines() if line.startswith("| "))
    assert [c.strip() for c in header.strip("|").split("|")] == ["", AVERAGE_LABEL, *MVTEC_PAPER_ORDER]

    latex = paper_tables.render(tables[:1], "latex")
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex
    head = next(line for line in latex.splitlines() if line.startswith(" & "))
    assert [c.strip() for c in head.removesuffix(r" \\").split("&")] == [
        "",
        AVERAGE_LABEL,
        *(c.replace("_", r"\_") for c in MVTEC_PAPER_ORDER),
    ]
    full_line = next(line for line in latex.splitlines() if line.startswith("full &"))
    ablated_line = next(line for line in latex.splitlines() if line.startswith("no\\_memory &"))
    paper_line = next(line for line in latex.splitlines() if line.startswith("MemSeg (paper) &"))
    assert r"\textbf{99.56}" in paper_line  # the best average is the paper's
    tootouch_line = next(line for line in latex.splitlines() if line.startswith("MemSeg (TooTouch†) &"))
    # its best checkpoints beat these fake numbers in every category but transistor (96.50 < 97.10)
    assert tootouch_line.count(r"\textbf") == 14 and r"96.50 &" in tootouch_line
    assert full_line.count(r"\textbf") == 1 and r"\textbf{97.10 $\pm$ 0.14}" in full_line
    assert r"\textbf" not in ablated_line
    assert r"$\pm$" in full_line


def test_csv_has_a_mean_and_std_column_per_column() -> None:
    tables = paper_tables.paper_tables(_rows(["bottle", "carpet"], seeds=(0,)), "s")
    reader = list(csv.reader(io.StringIO(paper_tables.render(tables, "csv"))))
    assert reader[0] == ["metric", "row", AVERAGE_LABEL, f"{AVERAGE_LABEL} std", "carpet", "carpet std", "bottle", "bottle std"]
    assert len({len(r) for r in reader}) == 1 and {r[0] for r in reader[1:]} == {
        "image_auroc",
        "pixel_auroc",
        "pixel_f1",
        "pixel_aupro",
    }


def test_other_data_sets_use_their_papers_order_and_metrics() -> None:
    visa = ["pcb1", "candle", "macaroni2"]
    tables = paper_tables.paper_tables(_rows(visa, dataset="visa", ablations=("full",)), "")
    assert tables[0].columns == (AVERAGE_LABEL, "candle", "macaroni2", "pcb1")
    assert all(len(t.rows) == 1 for t in tables)  # no published MemSeg row for VisA
    ad2 = paper_tables.paper_tables(_rows(["walnuts", "can"], dataset="mvtec_ad2", ablations=("full",)), "")
    assert [t.metric for t in ad2] == ["pixel_aupro_low", "pixel_aupro", "seg_f1"] and ad2[0].columns[1:] == ("can", "walnuts")


def test_report_layout_paper_from_the_command_line(tmp_path, capsys) -> None:
    from memseg.config import JobConfig

    for category in ("grid", "bottle"):
        config = JobConfig(category, dataset="synthetic")
        store.commit(tmp_path, store.Attempt("s"), fake_result(config, "t"))
    assert run_cli(["report", "--results", str(tmp_path), "--layout", "paper", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    assert r"\toprule" in out and " & Average & grid & bottle" in out
    assert run_cli(["report", "--results", str(tmp_path), "--format", "latex"]) == 2
    assert "--layout paper" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", paper_tables.FORMATS)
def test_every_format_renders_an_empty_sweep_as_nothing(fmt) -> None:
    assert paper_tables.render(paper_tables.paper_tables(_rows([])[:0]), fmt) == ""
