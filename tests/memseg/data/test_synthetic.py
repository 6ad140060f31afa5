"""The generated data set: MVTec AD's layout, exact masks, determinism, and safe regeneration."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memseg.data.synthetic import (
    AREA_RANGE,
    CHANGE_THRESHOLD,
    IN_PROGRESS,
    MARKER,
    defect_types,
    ensure_synthetic,
    generate,
    is_grey,
    read_marker,
    render_sample,
)
from memseg.data.types import DataError
from memseg.names import CATEGORIES, OBJECT_CATEGORIES, TEXTURE_CATEGORIES
from tests.memseg.data.conftest import SMALL


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


def test_layout_and_counts(synthetic_root):
    for category in SMALL["categories"]:
        folder = synthetic_root / category
        assert sorted(p.name for p in (folder / "train" / "good").iterdir()) == [f"{i:03d}.png" for i in range(6)]
        assert len(list((folder / "test" / "good").iterdir())) == 3
        assert not (folder / "ground_truth" / "good").exists()
        types = defect_types(category)
        assert 2 <= len(types) <= 3
        assert sorted(p.name for p in (folder / "test").iterdir()) == sorted(("good", *types))
        for defect in types:
            images = sorted(p.stem for p in (folder / "test" / defect).iterdir())
            masks = sorted(p.stem for p in (folder / "ground_truth" / defect).iterdir())
            assert images == ["000", "001"] and masks == ["000_mask", "001_mask"]
    assert json.loads((synthetic_root / MARKER).read_text())["categories"] == list(SMALL["categories"])
    assert not (synthetic_root / IN_PROGRESS).exists()


def test_files_are_mvtec_like(synthetic_root):
    image = Image.open(synthetic_root / "bottle" / "test" / "broken_large" / "000.png")
    mask = Image.open(synthetic_root / "bottle" / "ground_truth" / "broken_large" / "000_mask.png")
    assert image.mode == "RGB" and image.size == (64, 64)
    assert mask.mode == "L" and mask.size == image.size
    assert set(np.unique(np.asarray(mask)).tolist()) == {0, 255}
    assert is_grey("grid") and Image.open(synthetic_root / "grid" / "train" / "good" / "000.png").mode == "L"


def test_saved_masks_mark_exactly_the_changed_pixels(synthetic_root):
    """Each saved defect image equals the same sample rendered without its defect everywhere
    outside its mask, and differs clearly at every mask pixel."""
    for category in SMALL["categories"]:
        for defect in defect_types(category):
            for index in range(2):
                stem = f"{index:03d}"
                image = np.asarray(Image.open(synthetic_root / category / "test" / defect / f"{stem}.png").convert("RGB"))
                mask = np.asarray(Image.open(synthetic_root / category / "ground_truth" / defect / f"{stem}_mask.png")) > 0
                normal = render_sample(category, defect, index, 64, 0).normal
                change = np.abs(image.astype(int) - normal.astype(int)).max(axis=2)
                assert mask.any(), (category, defect, index)
                assert (change[~mask] == 0).all(), (category, defect, index)
                assert (change[mask] > CHANGE_THRESHOLD * 255).all(), (category, defect, index)


def test_every_category_and_defect_type_draws_a_sized_defect():
    assert set(CATEGORIES) == set(TEXTURE_CATEGORIES) | set(OBJECT_CATEGORIES)
    for category in CATEGORIES:
        good = render_sample(category, "good", 0, 64, 0, split="train")
        assert good.image.shape == (64, 64, 3) and good.image.dtype == np.uint8 and not good.mask.any()
        for defect in defect_types(category):
            sample = render_sample(category, defect, 0, 64, 0)
            assert AREA_RANGE[0] <= sample.mask.mean() <= AREA_RANGE[1], (category, defect, sample.mask.mean())
            assert (sample.image[~sample.mask] == sample.normal[~sample.mask]).all()


def test_normal_samples_vary_but_stay_alike():
    a, b = (render_sample("bottle", "good", i, 64, 0, "train").image.astype(float) for i in (0, 1))
    assert np.abs(a - b).mean() > 1.0  # pose, lighting and noise differ
    assert abs(a.mean() - b.mean()) < 20  # but it is the same kind of object


def test_same_seed_same_bytes_other_seed_other_bytes(synthetic_root, tmp_path):
    again = generate(tmp_path / "again", **SMALL)
    assert tree_digest(again) == tree_digest(synthetic_root)
    other = generate(tmp_path / "other", **{**SMALL, "seed": 1, "categories": ("bottle",)})
    ours = {k: v for k, v in tree_digest(synthetic_root).items() if k.startswith("bottle")}
    theirs = tree_digest(other)
    assert ours.keys() == theirs.keys()
    assert all(ours[k] != theirs[k] for k in ours)


def test_samples_do_not_depend_on_the_count_or_the_other_categories(synthetic_root, tmp_path):
    fewer = generate(tmp_path / "fewer", **{**SMALL, "categories": ("carpet",), "n_train": 2, "n_test_defect_per_type": 1})
    for name in ("train/good/001.png", "test/good/002.png", "test/cut/000.png", "ground_truth/cut/000_mask.png"):
        assert (fewer / "carpet" / name).read_bytes() == (synthetic_root / "carpet" / name).read_bytes(), name


def test_ensure_reuses_a_complete_set_and_regenerates_otherwise(tmp_path):
    params = {"categories": ("pill",), "n_train": 2, "n_test_good": 1, "n_test_defect_per_type": 1}
    root = ensure_synthetic(tmp_path / "set", image_size=64, seed=0, **params)
    first = tree_digest(root)
    stamp = (root / MARKER).stat().st_mtime_ns
    assert ensure_synthetic(root, image_size=64, seed=0, **params) == root
    assert (root / MARKER).stat().st_mtime_ns == stamp  # reused, not rewritten

    # Half-written: generation interrupted after 2 images (no marker). Stale files must go.
    class Interrupted(Exception):
        pass

    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        generate(root, image_size=64, seed=0, on_progress=interrupt, **{**params, "n_train": 3})
    assert read_marker(root) is None and (root / IN_PROGRESS).exists()
    (root / "pill" / "train" / "good" / "999.png").write_bytes(b"stale")
    ensure_synthetic(root, image_size=64, seed=0, **params)
    assert tree_digest(root) == first and read_marker(root) is not None

    # Other parameters: regenerated at the new size.
    ensure_synthetic(root, image_size=96, seed=0, **params)
    assert Image.open(root / "pill" / "train" / "good" / "000.png").size == (96, 96)
    assert read_marker(root)["image_size"] == 96


def test_ensure_adds_only_the_categories_a_set_lacks_with_the_images_a_whole_generation_draws(tmp_path):
    params = {"image_size": 64, "seed": 0, "n_train": 2, "n_test_good": 1, "n_test_defect_per_type": 1}
    root = ensure_synthetic(tmp_path / "set", categories=("pill",), **params)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["pill"]  # one category asked, one drawn
    pill = root / "pill" / "train" / "good" / "000.png"
    stamp = pill.stat().st_mtime_ns
    ensure_synthetic(root, categories=("carpet", "pill"), **params)
    assert pill.stat().st_mtime_ns == stamp  # kept, not drawn again
    assert read_marker(root)["categories"] == ["carpet", "pill"] and not (root / IN_PROGRESS).exists()
    whole = generate(tmp_path / "whole", categories=("pill", "carpet"), **params)
    assert tree_digest(root) == tree_digest(whole)
    assert ensure_synthetic(root, categories=("carpet",), **params) == root and read_marker(root)["categories"] == [
        "carpet",
        "pill",
    ]  # a subset: reused as it is


def test_generate_refuses_a_folder_it_did_not_write(tmp_path):
    real = tmp_path / "mvtec"
    (real / "bottle" / "train" / "good").mkdir(parents=True)
    (real / "bottle" / "train" / "good" / "000.png").write_bytes(b"precious")
    with pytest.raises(DataError) as err:
        generate(real, categories=("bottle",), image_size=64, n_train=1, n_test_good=1, n_test_defect_per_type=1)
    assert str(real) in str(err.value) and "bottle" in str(err.value)
    assert (real / "bottle" / "train" / "good" / "000.png").read_bytes() == b"precious"


def test_unknown_category_lists_valid_names(tmp_path):
    with pytest.raises(DataError) as err:
        generate(tmp_path / "x", categories=("bottel",), image_size=64)
    assert "bottel" in str(err.value) and "bottle" in str(err.value)
