"""Aggregation (mean ± std over seeds, the average row), the published numbers, and rendering."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness import report, store
from harness.reference import PAPER, TOOTOUCH
from harness.sweep import SweepSpec, dump_sweep, expand
from harness.tables import to_markdown
from memseg.names import CATEGORIES
from tests.harness.fakes import fake_result

REPO = Path(__file__).resolve().parents[2]


def _rows(records):
    """A results frame with the store's columns from (category, ablation, seed, image, status)."""
    rows = []
    for category, ablation, seed, image, status in records:
        row = store.empty_row()
        row.update(
            job_id=f"{category}-{ablation}-{seed}",
            category=category,
            ablation=ablation,
            seed=seed,
            status=status,
            dataset="mvtec",
            image_auroc=image,
            pixel_auroc=image,
            pixel_f1=0.5,
            pixel_aupro=0.5,
            train_steps_per_s=2.0,
            infer_images_per_s=50.0,
            error="boom" if status == "failed" else "",
            attempts=1,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def test_mean_and_std_over_seeds_in_percent():
    rows = _rows(
        [
            ("bottle", "full", 0, 0.90, "ok"),
            ("bottle", "full", 1, 0.94, "ok"),
            ("carpet", "full", 0, 0.80, "ok"),
            ("carpet", "full", 1, 0.70, "failed"),
        ]
    )
    agg = report.aggregate(rows).set_index("category")
    assert agg.loc["bottle", "image_auroc_mean"] == pytest.approx(92.0)
    assert agg.loc["bottle", "image_auroc_std"] == pytest.approx(pd.Series([90.0, 94.0]).std())
    assert agg.loc["carpet", "n"] == 1 and agg.loc["carpet", "failed"] == 1
    assert math.isnan(agg.loc["carpet", "image_auroc_std"])  # one seed: no spread
    # Average: mean of the category means; std only over seeds complete for every category (seed 0 only).
    assert agg.loc["average", "image_auroc_mean"] == pytest.approx((92.0 + 80.0) / 2)
    assert math.isnan(agg.loc["average", "image_auroc_std"])
    assert list(agg.index) == ["bottle", "carpet", "average"]


def test_average_std_is_the_spread_of_per_seed_averages():
    rows = _rows(
        [
            ("bottle", "full", 0, 0.90, "ok"),
            ("bottle", "full", 1, 0.94, "ok"),
            ("carpet", "full", 0, 0.80, "ok"),
            ("carpet", "full", 1, 0.70, "ok"),
        ]
    )
    avg = report.aggregate(rows).set_index("category").loc["average"]
    assert avg["image_auroc_std"] == pytest.approx(pd.Series([85.0, 82.0]).std())


def test_ablations_are_separate_groups_in_canonical_order():
    rows = _rows([("grid", "no_memory", 0, 0.5, "ok"), ("grid", "full", 0, 0.9, "ok"), ("bottle", "full", 0, 0.8, "ok")])
    agg = report.aggregate(rows)
    assert list(zip(agg.ablation, agg.category)) == [
        ("full", "bottle"),
        ("full", "grid"),
        ("full", "average"),
        ("no_memory", "grid"),
        ("no_memory", "average"),
    ]


def test_reference_numbers_are_the_published_ones_only():
    assert PAPER.image_auroc == {"average": 99.56} and PAPER.pixel_auroc == {"average": 98.84}
    assert set(TOOTOUCH.image_auroc) == set(CATEGORIES) | {"average"}
    assert TOOTOUCH.image_auroc["cable"] == 92.50 and TOOTOUCH.pixel_auroc["transistor"] == 76.29
    assert "test set" in TOOTOUCH.note


def test_tables_show_references_on_mvtec_and_list_failures():
    rows = _rows([(c, "full", 0, 0.9, "ok") for c in CATEGORIES] + [("bottle", "no_memory", 0, 0.5, "failed")])
    tables = report.summary_tables(rows, "paper")
    full = tables[0]
    assert "TooTouch† img" in full.headers and "test set" in full.caption
    cells = {r[0]: r for r in full.rows}
    assert set(cells) == set(CATEGORIES) | {"average"}
    paper_img = full.headers.index("paper img")
    assert cells["average"][paper_img] == "99.56" and cells["bottle"][paper_img] == ""  # never per category
    assert cells["cable"][full.headers.index("TooTouch† img")] == "92.50"
    failed = tables[-1]
    assert failed.title.endswith("failed jobs") and failed.rows[0][-1] == "boom"
    markdown = "".join(to_markdown(t) for t in tables)
    assert "| cable |" in markdown and "**average**" in markdown and "TooTouch†" in markdown


def test_generated_data_hides_the_mvtec_numbers():
    rows = _rows([("bottle", "full", 0, 0.9, "ok")]).assign(dataset="synthetic")
    (table,) = report.summary_tables(rows, "smoke")
    assert "TooTouch† img" not in table.headers and "not shown" in table.caption


def test_report_and_status_read_parquet_without_importing_ray_or_torch(tmp_path):
    spec = SweepSpec(name="demo", categories=("bottle", "carpet", "grid"), profile="tiny")
    for config in expand(spec)[:2]:
        result = fake_result(config, "t")
        row = store.row_from_result(store.Attempt("demo", "tiny", attempts=1, worker=None, recorded_at="t", wall_s=1.0), result)
        store.write_job(tmp_path, row, store.scores_frame(result))
    store.save_spec(tmp_path, "demo", dump_sweep(spec))
    code = f"""
import argparse, sys
from harness.__main__ import build_parser
p = build_parser()
for argv in (["report", "--results", {str(tmp_path)!r}, "--markdown"], ["status", "--results", {str(tmp_path)!r}]):
    a = p.parse_args(argv); assert a.func(a) == 0
heavy = [m for m in ("ray", "torch", "scipy", "matplotlib") if m in sys.modules]
assert not heavy, f"report/status imported {{heavy}}"
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "| bottle |" in out.stdout and "| carpet |" in out.stdout
    # status: 3 jobs in the spec, 2 done, 0 failed, 1 pending.
    status_line = next(line for line in out.stdout.splitlines() if "demo" in line and "tiny" in line)
    assert [c.strip() for c in status_line.split("│")[4:8]] == ["3", "2", "0", "1"]


def test_variants_are_separate_groups_and_every_table_names_them():
    rows = _rows(
        [
            ("grid", "full", 0, 0.9, "ok"),
            ("grid", "full", 1, 0.8, "ok"),
            ("grid", "full", 0, 0.5, "ok"),
            ("grid", "full", 1, 0.6, "ok"),
            ("bottle", "full", 0, 0.7, "failed"),
        ]
    )
    rows["variant"] = ["official", "official", "tootouch", "tootouch", "tootouch"]
    rows["job_id"] = [f"{j}-{v}" for j, v in zip(rows["job_id"], rows["variant"])]
    agg = report.aggregate(rows)
    # Two recipes are never averaged together: one group each, in name order.
    assert list(zip(agg.variant, agg.category, agg.n)) == [
        ("official", "grid", 2),
        ("official", "average", 2),
        ("tootouch", "bottle", 0),
        ("tootouch", "grid", 2),
        ("tootouch", "average", 2),
    ]
    means = agg.set_index(["variant", "category"])["image_auroc_mean"]
    assert means[("official", "grid")] == pytest.approx(85.0) and means[("tootouch", "grid")] == pytest.approx(55.0)
    tables = {t.title: t for t in report.summary_tables(rows, "recipes")}
    assert {"recipes · MVTec AD · full · official", "recipes · MVTec AD · full · tootouch"} <= set(tables)
    side = tables["recipes · image AUROC by ablation and variant"]
    assert side.headers == ("category", "full · official", "full · tootouch")
    assert side.rows[-1] == ("average", "85.00", "55.00")
    failed = tables["recipes · failed jobs"]
    assert failed.headers == ("job", "category", "seed", "ablation", "variant", "attempts", "error")
    assert failed.rows[0][4] == "tootouch"
    # Markdown shows the same cells.
    assert "| category | full · official | full · tootouch |" in to_markdown(side)


def test_without_variants_the_tables_are_as_before():
    rows = _rows([("grid", "full", 0, 0.9, "ok"), ("bottle", "full", 0, 0.7, "failed")])
    tables = report.summary_tables(rows, "s")
    assert tables[0].title == "s · MVTec AD · full"
    assert tables[-1].headers == ("job", "category", "seed", "ablation", "attempts", "error")
    two = _rows([("grid", "full", 0, 0.9, "ok"), ("grid", "no_memory", 0, 0.5, "ok")])
    side = report._side_by_side(report.aggregate(two), report.groups_of(two), "image_auroc", "s")
    assert side.title == "s · image AUROC by ablation" and side.headers == ("category", "full", "no_memory")
    # A frame without the column (built by hand, not by the store) has no variants.
    assert set(report.aggregate(two.drop(columns="variant"))["variant"]) == {""}


@pytest.mark.parametrize(
    "dataset, scoring, labels",
    [
        ("mvtec", "mvtec_ad", ["image AUROC", "pixel AUROC", "pixel F1-max", "AUPRO@0.3"]),
        ("mvtec_ad2", "mvtec_ad2", ["AUPRO@0.05", "AUPRO@0.3"]),
        ("visa", "visa", ["image AUROC", "image AUPR", "pixel AUROC", "AUPRO@0.3"]),
        ("mpdd", "mpdd", ["image AUROC", "pixel AUROC", "AUPRO@0.3"]),
        ("btad", "btad", ["pixel AUROC", "AUPRO@0.3"]),
    ],
)
def test_the_summary_shows_each_data_sets_headline_metrics(dataset, scoring, labels):
    rows = _rows([("bottle", "full", 0, 0.9, "ok")]).assign(dataset=dataset, scoring=scoring, pixel_aupro_low=0.2, image_aupr=0.8)
    (table,) = report.summary_tables(rows, "s")
    shown = [
        h for h in table.headers if h in {"image AUROC", "image AUPR", "pixel AUROC", "pixel F1-max", "AUPRO@0.3", "AUPRO@0.05"}
    ]
    assert shown == labels


def test_calibrated_rows_get_a_thresholds_table_with_f1_max_labelled_the_oracle():
    rows = _rows([("bottle", "full", 0, 0.9, "ok"), ("bottle", "full", 1, 0.8, "ok"), ("carpet", "full", 0, 0.9, "ok")])
    assert report.thresholds_table(rows) is None  # nothing calibrated: no table
    rule = "mean + 3 std (population) of the scores of 4 defect-free images: somewhere"
    rows = rows.assign(
        threshold_rule=rule,
        image_precision=[0.5, 1.0, 0.25],
        image_recall=0.5,
        image_f1=0.5,
        image_fpr=[0.1, 0.3, 0.0],
        seg_f1=0.4,
    )
    tables = report.summary_tables(rows, "s")
    (table,) = [t for t in tables if "thresholds chosen without the test set" in t.title]
    assert table.headers == (
        "group", "category", "runs", "image precision", "image recall", "image F1", "image FPR", "SegF1", "pixel F1-max (oracle)",
    )  # fmt: skip
    assert table.rows[0][:5] == ("full", "bottle", "2", "75.00", "50.00") and table.rows[0][6] == "20.00"
    assert table.rows[1][1] == "carpet" and rule in table.caption and "oracle" in table.caption


def test_the_html_summary_labels_f1_max_the_oracle_beside_the_calibrated_numbers():
    from harness import report_html

    rows = _rows([("bottle", "full", 0, 0.9, "ok")]).assign(
        threshold_rule="mean + 3 std (population) of the scores of 4 defect-free images: x",
        image_precision=0.5, image_recall=0.5, image_f1=0.5, image_fpr=0.1, seg_f1=0.4,
    )  # fmt: skip
    page = "".join(report_html.table_html(t) for t in report.summary_tables(rows, "s"))
    assert "<th>pixel F1-max (oracle)</th>" in page and "<th>SegF1</th>" in page and "<th>image FPR</th>" in page
