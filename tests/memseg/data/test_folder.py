"""The generic folder reader: normal/abnormal/masks layout, the fixed normal split, no-mask data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from memseg.data.folder import scan_folder_category, split_normal
from memseg.data.loading import load_category
from memseg.data.types import DataError
from tests.memseg.data.conftest import write_png


def make_folder_set(root: Path, n_normal: int = 12, n_abnormal: int = 3, masks: str | None = "stem", size: int = 40) -> Path:
    """<root>/parts/{normal,abnormal,masks}: normal images are plain grey, abnormal ones have a
    white square that their mask marks. masks: "stem" (a.png), "suffix" (a_mask.png) or None."""
    rng = np.random.default_rng(0)
    cat = root / "parts"
    for i in range(n_normal):
        write_png(
            cat / "normal" / f"n{i:02d}.jpg" if i % 3 == 0 else cat / "normal" / f"n{i:02d}.png",
            np.full((size, size, 3), 90 + int(rng.integers(0, 10)), np.uint8),
        )
    for i in range(n_abnormal):
        image = np.full((size, size, 3), 95, np.uint8)
        image[5:15, 5 + i : 15 + i] = 255
        write_png(cat / "abnormal" / f"a{i}.png", image)
        if masks is not None:
            mask = np.zeros((size, size), np.uint8)
            mask[5:15, 5 + i : 15 + i] = 255
            write_png(cat / "masks" / (f"a{i}.png" if masks == "stem" else f"a{i}_mask.png"), mask)
    return root


def test_split_holds_out_every_fifth_normal_image_by_name():
    names = [Path(f"img{i:02d}.png") for i in range(12)]
    train, test = split_normal(list(reversed(names)))  # input order does not matter
    assert [p.name for p in test] == ["img04.png", "img09.png"]
    assert len(train) == 10 and not set(train) & set(test)


def test_loads_with_masks(tmp_path):
    root = make_folder_set(tmp_path)
    data = load_category("folder", root, "parts", 32)
    assert data.train_images.shape == (10, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert data.test_labels.tolist() == [0, 0, 1, 1, 1]
    assert data.test_defect_types == ("good", "good", "abnormal", "abnormal", "abnormal")
    assert data.test_masks is not None and data.test_masks.dtype == torch.bool
    assert not data.test_masks[:2].any() and data.test_masks[2:].flatten(1).any(dim=1).all()
    # the mask marks the bright square
    bright = data.test_images[2].float().mean(dim=0) > 200
    assert (bright & ~data.test_masks[2]).sum() <= 4


def test_mask_suffix_naming_also_pairs(tmp_path):
    data = load_category("folder", make_folder_set(tmp_path, masks="suffix"), "parts", 32)
    assert data.test_masks[2:].flatten(1).any(dim=1).all()


def test_without_masks_folder_masks_are_none(tmp_path):
    data = load_category("folder", make_folder_set(tmp_path, masks=None), "parts", 32)
    assert data.test_masks is None and data.test_labels.sum() == 3


def test_abnormal_image_without_mask_and_mask_without_image(tmp_path):
    root = make_folder_set(tmp_path)
    (root / "parts" / "masks" / "a1.png").unlink()
    write_png(root / "parts" / "masks" / "zz.png", np.zeros((40, 40), np.uint8))
    with pytest.raises(DataError) as err:
        load_category("folder", root, "parts", 32)
    assert any(str(root / "parts" / "abnormal" / "a1.png") in p for p in err.value.problems)
    assert any(str(root / "parts" / "masks" / "zz.png") in p and "without an image" in p for p in err.value.problems)


def test_too_few_normal_images_and_missing_folders(tmp_path):
    root = make_folder_set(tmp_path, n_normal=3)
    problems = scan_folder_category(root, "parts").problems
    assert any(str(root / "parts" / "normal") in p and "at least 5" in p for p in problems)
    (root / "other").mkdir()
    problems = scan_folder_category(root, "other").problems
    assert any(str(root / "other" / "normal") in p for p in problems)
    assert any(str(root / "other" / "abnormal") in p for p in problems)
    assert any(str(root / "missing") in p for p in scan_folder_category(root, "missing").problems)


def test_missing_root(tmp_path):
    with pytest.raises(DataError) as err:
        load_category("folder", tmp_path / "nope", "parts", 32)
    assert str(tmp_path / "nope") in str(err.value) and "normal" in str(err.value)
