"""Dispatch by data set kind, and validation that reports every problem of every category."""

from __future__ import annotations

import shutil

import pytest

from memseg.data.loading import check, discover_categories, load_category, validate
from memseg.data.synthetic import MARKER, defect_types
from memseg.data.types import DataError
from tests.memseg.data.test_folder import make_folder_set


def test_synthetic_and_mvtec_kinds_read_the_same(synthetic_root):
    a = load_category("synthetic", synthetic_root, "carpet", 64)
    b = load_category("mvtec", synthetic_root, "carpet", 64)
    assert a.test_paths == b.test_paths and (a.test_images == b.test_images).all()


def test_folder_kind(tmp_path):
    data = load_category("folder", make_folder_set(tmp_path), "parts", 32)
    assert data.test_labels.tolist() == [0, 0, 1, 1, 1]


def test_unknown_kind_and_category(synthetic_root):
    with pytest.raises(DataError, match="valid kinds: mvtec, folder, synthetic"):
        load_category("mvtek", synthetic_root, "bottle", 64)
    with pytest.raises(DataError, match="valid categories: .*bottle"):
        load_category("mvtec", synthetic_root, "bottel", 64)


def test_validate_counts(synthetic_root):
    report = check("synthetic", synthetic_root)
    assert report.ok and report.categories == ("bottle", "grid", "carpet")
    counts = report.counts["grid"]
    assert counts["train"] == {"good": 6}
    assert counts["test"] == {"good": 3, **{d: 2 for d in defect_types("grid")}}
    assert counts["masks"] == {d: 2 for d in defect_types("grid")}
    assert discover_categories("mvtec", synthetic_root) == ("bottle", "carpet", "grid")


def test_check_lists_every_problem_across_categories(data_copy):
    gone = data_copy / "bottle" / "test" / defect_types("bottle")[0] / "000.png"
    (data_copy / "bottle" / "ground_truth" / defect_types("bottle")[0] / "000_mask.png").unlink()
    truncated = data_copy / "grid" / "train" / "good" / "003.png"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    report = validate("mvtec", data_copy, ["bottle", "grid", "carpet", "pill", "bottel"])
    text = "\n".join(report.problems)
    assert str(gone) in text and str(truncated) in text
    assert str(data_copy / "pill") in text and "bottel" in text
    assert report.counts["carpet"]["train"] == {"good": 6}
    with pytest.raises(DataError) as err:
        check("mvtec", data_copy, ["bottle", "grid"])
    assert str(gone) in str(err.value) and str(truncated) in str(err.value)


def test_missing_root_is_a_problem_not_a_crash(tmp_path):
    report = validate("mvtec", tmp_path / "absent")
    assert not report.ok and str(tmp_path / "absent") in report.problems[0]
    with pytest.raises(DataError, match="absent"):
        check("folder", tmp_path / "absent")


def test_empty_root_says_what_layout_is_expected(tmp_path):
    report = validate("mvtec", tmp_path)
    assert not report.ok and "train/good" in report.problems[0]


def test_incomplete_generated_set_is_reported(data_copy):
    (data_copy / MARKER).unlink()
    report = validate("synthetic", data_copy, ["bottle"])
    assert any(MARKER in p for p in report.problems)
    assert validate("mvtec", data_copy, ["bottle"]).ok  # as MVTec layout it is fine


def test_stray_files_are_warnings(data_copy):
    (data_copy / "carpet" / "test" / "good" / ".DS_Store").write_bytes(b"\x00")
    report = validate("synthetic", data_copy)
    assert report.ok and any(".DS_Store" in w for w in report.warnings)


def test_mask_size_mismatch_found_by_validation(data_copy):
    from PIL import Image

    defect = defect_types("carpet")[1]
    mask = data_copy / "carpet" / "ground_truth" / defect / "000_mask.png"
    Image.open(mask).resize((32, 32)).save(mask)
    shutil.rmtree(data_copy / "grid")
    report = validate("synthetic", data_copy)
    assert any(str(mask) in p and "32x32" in p for p in report.problems)
    assert any(str(data_copy / "grid") in p for p in report.problems)  # the marker lists it
