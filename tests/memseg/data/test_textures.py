"""Texture folders (DTD layout or any folder of images) for the anomaly simulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memseg.data.textures import load_texture_folder
from memseg.data.types import DataError
from tests.memseg.data.conftest import write_png


def make_dtd(root, classes=("banded", "dotted"), per_class=3):
    rng = np.random.default_rng(0)
    for name in classes:
        for i in range(per_class):
            write_png(
                root / "dtd" / "images" / name / f"{name}_{i:04d}.jpg", rng.integers(0, 256, (30 + 10 * i, 50, 3), dtype=np.uint8)
            )
    (root / "dtd" / "labels").mkdir(parents=True)
    (root / "dtd" / "labels" / "train1.txt").write_text("banded/banded_0000.jpg\n")
    return root / "dtd"


def test_loads_dtd_layout_recursively(tmp_path):
    textures = load_texture_folder(make_dtd(tmp_path), 32)
    assert textures.shape == (6, 3, 32, 32) and textures.dtype == torch.uint8


def test_max_images_is_a_seeded_subset(tmp_path):
    dtd = make_dtd(tmp_path)
    a = load_texture_folder(dtd, 16, max_images=3, seed=1)
    b = load_texture_folder(dtd, 16, max_images=3, seed=1)
    assert a.shape == (3, 3, 16, 16) and torch.equal(a, b)
    subsets = {load_texture_folder(dtd, 16, max_images=2, seed=s).sum().item() for s in range(6)}
    assert len(subsets) > 1


def test_missing_or_empty_folder_names_the_path(tmp_path):
    with pytest.raises(DataError) as err:
        load_texture_folder(tmp_path / "nope", 32)
    assert str(tmp_path / "nope") in str(err.value)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as err:
        load_texture_folder(tmp_path / "empty", 32)
    assert str(tmp_path / "empty") in str(err.value) and "no images" in str(err.value)


def test_unreadable_texture_is_named(tmp_path):
    dtd = make_dtd(tmp_path)
    bad = dtd / "images" / "banded" / "banded_0001.jpg"
    bad.write_bytes(b"broken")
    with pytest.raises(DataError) as err:
        load_texture_folder(dtd, 32)
    assert str(bad) in str(err.value)
