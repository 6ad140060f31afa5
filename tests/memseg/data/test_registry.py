"""The dataset registry is the one place that names datasets and their categories: JobConfig,
readers and the simulator's foreground switch all follow it. MPDD reads with the MVTec
reader under its own category names."""

from __future__ import annotations

import shutil
import sys

import pytest

from memseg.build import build_simulator
from memseg.config import JobConfig
from memseg.data import loading
from memseg.data.registry import DATASET_KINDS, DATASETS, check_category
from memseg.data.types import DataError


def test_every_dataset_has_a_reader_a_layout_and_its_published_categories():
    assert DATASET_KINDS == ("mvtec", "folder", "synthetic", "visa", "mvtec_ad2", "mpdd", "btad")
    sizes = {name: len(d.categories) if d.categories else None for name, d in DATASETS.items()}
    assert sizes == {"mvtec": 15, "folder": None, "synthetic": 15, "visa": 12, "mvtec_ad2": 8, "mpdd": 6, "btad": 3}
    for name in DATASET_KINDS:
        assert callable(loading.reader(name)) and "layout" in loading.layout(name)
        assert loading.layout(name) == sys.modules[loading.reader(name).__module__].LAYOUT
    # Only MVTec AD (and our MVTec-layout set) has the per-category foreground table; VisA's masks are non-zero.
    assert [n for n, d in DATASETS.items() if d.settings.category_table] == ["mvtec", "synthetic"]
    assert not any(d.settings.foreground_mask for d in DATASETS.values())  # every data set's default: none
    assert [n for n, d in DATASETS.items() if d.settings.masks == "nonzero"] == ["visa"]
    assert [n for n, d in DATASETS.items() if d.published] == ["mvtec"]


def test_categories_are_checked_per_dataset():
    assert JobConfig(category="pcb1", dataset="visa").category == "pcb1"
    assert JobConfig(category="my_part", dataset="folder").category == "my_part"
    with pytest.raises(ValueError, match=r"unknown categories \['bottle'\]; valid: candle, .*pipe_fryum \(dataset visa\)"):
        JobConfig(category="bottle", dataset="visa")
    with pytest.raises(ValueError, match=r"unknown categories \['pcb1'\]; valid: bottle"):
        JobConfig(category="pcb1")
    with pytest.raises(ValueError, match=r"unknown kinds \['visa2'\]; valid: mvtec, folder, synthetic, visa"):
        JobConfig(category="pcb1", dataset="visa2")
    assert check_category("01", "btad") == "01"


def test_the_foreground_table_is_used_only_where_the_registry_says_so():
    bottle = build_simulator(JobConfig(category="bottle", image_size=64, ablation="structure_only"), None)
    candle = build_simulator(JobConfig(category="candle", dataset="visa", image_size=64, ablation="structure_only"), None)
    assert bottle.config.foreground_mask and not candle.config.foreground_mask


def test_mpdd_reads_with_the_mvtec_reader_under_its_own_names(lookalike, lookalike_copy):
    root = lookalike("mpdd")
    assert loading.discover_categories("mpdd", root) == ("connector", "tubes")
    data = loading.load_category("mpdd", root, "tubes", 32)
    assert data.test_labels.sum() > 0 and data.test_masks[data.test_labels == 1].any()
    with pytest.raises(DataError, match="valid categories: bracket_black"):
        loading.load_category("mpdd", root, "bottle", 32)
    broken = lookalike_copy("mpdd")
    defect = min(p.name for p in (broken / "tubes" / "ground_truth").iterdir())
    shutil.rmtree(broken / "tubes" / "ground_truth" / defect)
    report = loading.validate("mpdd", broken)
    assert any(str(broken / "tubes" / "test" / defect / "000.png") in p and "without a mask" in p for p in report.problems)


def test_every_lookalike_validates_and_a_foreign_folder_is_refused(lookalike, tmp_path):
    from memseg.data.lookalike import generate_like

    for dataset in ("visa", "mvtec_ad2", "mpdd", "btad"):
        report = loading.validate(dataset, lookalike(dataset))
        assert report.ok and report.categories, (dataset, report.problems)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "candle").mkdir()
    with pytest.raises(DataError, match="did not write"):
        generate_like("visa", tmp_path / "real", ["candle"], image_size=32)
