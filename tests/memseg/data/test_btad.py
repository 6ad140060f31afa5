"""BTAD reader: ok/ko folders, .bmp and .png images and masks paired by stem whatever their
suffix; bad input is listed with paths."""

from __future__ import annotations

import shutil

import pytest

from memseg.data.loading import load_category, scan_category
from memseg.data.types import DataError


@pytest.mark.parametrize(
    ("category", "image_suffix", "mask_suffix"),
    [("01", ".bmp", ".png"), ("02", ".png", ".png"), ("03", ".bmp", ".bmp")],
)
def test_each_category_pairs_images_and_masks_across_suffixes(lookalike, category, image_suffix, mask_suffix):
    root = lookalike("btad")
    files = scan_category("btad", root, category)
    assert not files.problems and files.train and all(p.suffix == image_suffix for p in files.train)
    normal = [t for t in files.test if not t.is_anomalous]
    anomalous = [t for t in files.test if t.is_anomalous]
    assert normal and all(t.path.parent.name == "ok" and t.mask is None for t in normal)
    assert anomalous and all(t.defect_type == "ko" for t in anomalous)
    assert all(t.mask == root / category / "ground_truth" / "ko" / (t.path.stem + mask_suffix) for t in anomalous)
    data = load_category("btad", root, category, 32)
    assert data.test_labels.tolist() == [0] * len(normal) + [1] * len(anomalous)
    assert all(m.any() for m in data.test_masks[data.test_labels == 1])


def test_bad_input_is_listed_with_paths(lookalike_copy):
    root = lookalike_copy("btad")
    (root / "01" / "ground_truth" / "ko" / "0000.png").unlink()
    shutil.rmtree(root / "02" / "train" / "ok")
    with pytest.raises(DataError) as err:
        load_category("btad", root, "01", 32)
    assert any(f"{root / '01' / 'test' / 'ko' / '0000.bmp'}: test image without a mask" in p for p in err.value.problems)
    with pytest.raises(DataError) as err:
        load_category("btad", root, "02", 32)
    assert any(f"{root / '02' / 'train' / 'ok'}: folder missing; expected BTAD layout" in p for p in err.value.problems)
    with pytest.raises(DataError, match="valid categories: 01, 02, 03"):
        load_category("btad", root, "04", 32)
