"""MVTec AD 2 reader: trains on train/good, evaluates test_public only, reads validation/good for
the thresholds only, reports the private test sets as not read, refuses to evaluate them, lists
bad input."""

from __future__ import annotations

import shutil

import pytest

from memseg.data.loading import load_category, scan_category, validate
from memseg.data.mvtec_ad2 import check_test_set
from memseg.data.types import DataError


def test_test_public_is_evaluated_and_the_rest_is_reported_not_read(lookalike):
    root = lookalike("mvtec_ad2")
    files = scan_category("mvtec_ad2", root, "can")
    assert not files.problems
    assert all(p.parent == root / "can" / "train" / "good" for p in files.train)
    assert {t.path.parent.relative_to(root / "can").as_posix() for t in files.test} == {
        "test_public/good",
        "test_public/bad",
    }
    assert all(
        t.mask.name == t.path.stem + "_mask.png" and t.mask.parent == root / "can" / "test_public" / "ground_truth" / "bad"
        for t in files.test
        if t.is_anomalous
    )
    warned = "\n".join(files.warnings)
    for name in ("test_private", "test_private_mixed"):
        assert str(root / "can" / name) in warned
    assert "validation" not in warned  # read: the thresholds are calibrated on it (memseg.calibration)
    assert files.validation and all(p.parent == root / "can" / "validation" / "good" for p in files.validation)
    assert list(files.validation) == sorted(files.validation)
    data = load_category("mvtec_ad2", root, "can", 32)
    assert len(data.test_paths) == len(files.test) and not any("private" in p or "validation" in p for p in data.test_paths)
    assert data.validation_images is not None and data.validation_images.shape == (len(files.validation), 3, 32, 32)
    assert data.validation_paths == tuple(str(p) for p in files.validation)
    assert not set(data.validation_paths) & set(data.train_paths)
    assert data.test_labels.sum() == sum(t.is_anomalous for t in files.test) > 0


def test_private_test_sets_are_refused_for_evaluation():
    assert check_test_set("test_public") == "test_public"
    for name in ("test_private", "test_private_mixed"):
        with pytest.raises(DataError) as err:
            check_test_set(name)
        assert "no ground truth" in str(err.value) and "test_public" in str(err.value) and "benchmark.mvtec.com" in str(err.value)
    with pytest.raises(DataError, match="valid: test_public, test_private, test_private_mixed"):
        check_test_set("test")


def test_missing_test_public_says_the_private_sets_cannot_stand_in(lookalike_copy):
    root = lookalike_copy("mvtec_ad2")
    shutil.rmtree(root / "can" / "test_public")
    report = validate("mvtec_ad2", root, ["can"])
    text = "\n".join(report.problems)
    assert (
        f"{root / 'can' / 'test_public'}: missing; only test_private, test_private_mixed found, which have no ground truth"
        in text
    )


def test_a_missing_mask_and_a_stray_mask_are_named(lookalike_copy):
    root = lookalike_copy("mvtec_ad2")
    gt = root / "walnuts" / "test_public" / "ground_truth" / "bad"
    (gt / "000_regular_mask.png").unlink()
    shutil.copy(gt / "001_regular_mask.png", gt / "099_regular_mask.png")
    with pytest.raises(DataError) as err:
        load_category("mvtec_ad2", root, "walnuts", 32)
    text = "\n".join(err.value.problems)
    assert (
        f"{root / 'walnuts' / 'test_public' / 'bad' / '000_regular.png'}: test image without a mask; expected {gt / '000_regular_mask.png'}"
        in text
    )
    assert f"{gt / '099_regular_mask.png'}: mask without a test image" in text
