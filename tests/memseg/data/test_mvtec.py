"""The MVTec AD reader, on the generated set and on every kind of broken copy of it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from memseg.data.loading import load_category
from memseg.data.mvtec import scan_mvtec_category
from memseg.data.synthetic import defect_types
from memseg.data.types import DataError
from tests.memseg.data.conftest import write_png


def load_error(root, category="bottle", size=64) -> DataError:
    with pytest.raises(DataError) as err:
        load_category("mvtec", root, category, size)
    return err.value


def test_loads_generated_category(synthetic_root):
    data = load_category("mvtec", synthetic_root, "bottle", 64)
    n_defect = 2 * len(defect_types("bottle"))
    assert data.category == "bottle"
    assert data.train_images.shape == (6, 3, 64, 64) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (3 + n_defect, 3, 64, 64) and data.test_images.dtype == torch.uint8
    assert data.test_masks is not None and data.test_masks.shape == (3 + n_defect, 64, 64)
    assert data.test_masks.dtype == torch.bool
    assert data.test_labels.dtype == torch.int64
    assert data.test_labels.tolist() == [0] * 3 + [1] * n_defect
    assert data.test_defect_types[:3] == ("good",) * 3
    assert len(data.test_paths) == len(data.test_defect_types) == 3 + n_defect
    assert len(data.train_paths) == 6


def test_masks_pair_with_their_images(synthetic_root):
    data = load_category("mvtec", synthetic_root, "carpet", 64)
    for i, (path, defect) in enumerate(zip(data.test_paths, data.test_defect_types)):
        if defect == "good":
            assert not data.test_masks[i].any()
            continue
        stem = path.rsplit("/", 1)[1].removesuffix(".png")
        saved = np.asarray(Image.open(synthetic_root / "carpet" / "ground_truth" / defect / f"{stem}_mask.png")) > 0
        assert saved.any() and (data.test_masks[i].numpy() == saved).all()
        image = np.asarray(Image.open(path).convert("RGB"))
        assert (data.test_images[i].permute(1, 2, 0).numpy() == image).all()


def test_resizes_images_and_masks(synthetic_root):
    data = load_category("mvtec", synthetic_root, "grid", 32)  # a grayscale category
    assert data.train_images.shape == (6, 3, 32, 32)
    assert (data.train_images[:, 0] == data.train_images[:, 1]).all()
    assert data.test_masks.shape[1:] == (32, 32)
    assert data.test_masks[data.test_labels == 1].flatten(1).any(dim=1).all()


def test_missing_root_names_it_and_the_layout(tmp_path):
    err = load_error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err) and "train/good" in str(err)


def test_missing_category_folder_names_it_and_the_layout(synthetic_root):
    err = load_error(synthetic_root, "pill")
    assert str(synthetic_root / "pill") in str(err) and "ground_truth" in str(err)


def test_unknown_category_lists_valid_names(synthetic_root):
    err = load_error(synthetic_root, "bottel")
    assert "bottel" in str(err) and "metal_nut" in str(err)


def test_empty_train_good(data_copy):
    for file in (data_copy / "bottle" / "train" / "good").iterdir():
        file.unlink()
    err = load_error(data_copy)
    assert str(data_copy / "bottle" / "train" / "good") in str(err) and "no training images" in str(err)


def test_test_image_without_mask_and_mask_without_image_are_both_listed(data_copy):
    defect = defect_types("bottle")[0]
    lonely_image = data_copy / "bottle" / "test" / defect / "000.png"
    (data_copy / "bottle" / "ground_truth" / defect / "000_mask.png").unlink()
    shutil.copy(
        data_copy / "bottle" / "ground_truth" / defect / "001_mask.png",
        data_copy / "bottle" / "ground_truth" / defect / "007_mask.png",
    )
    err = load_error(data_copy)
    assert any(str(lonely_image) in p and "without a mask" in p for p in err.problems)
    assert any("007_mask.png" in p and "without a test image" in p for p in err.problems)


def test_missing_mask_folder_lists_every_image(data_copy):
    defect = defect_types("bottle")[1]
    shutil.rmtree(data_copy / "bottle" / "ground_truth" / defect)
    err = load_error(data_copy)
    for stem in ("000", "001"):
        assert any(str(data_copy / "bottle" / "test" / defect / f"{stem}.png") in p for p in err.problems)


def test_mask_of_another_size(data_copy):
    defect = defect_types("bottle")[0]
    mask = data_copy / "bottle" / "ground_truth" / defect / "001_mask.png"
    Image.open(mask).resize((48, 64)).save(mask)
    err = load_error(data_copy)
    assert any(str(mask) in p and "48x64" in p and "64x64" in p for p in err.problems)


def test_truncated_and_unreadable_images_are_all_listed(data_copy):
    truncated = data_copy / "bottle" / "train" / "good" / "002.png"
    truncated.write_bytes(truncated.read_bytes()[:-200])
    garbage = data_copy / "bottle" / "test" / "good" / "001.png"
    garbage.write_bytes(b"not a png at all")
    err = load_error(data_copy)
    assert any(str(truncated) in p for p in err.problems)
    assert any(str(garbage) in p for p in err.problems)


def test_non_image_file_is_an_error_and_known_strays_are_ignored(data_copy):
    (data_copy / "bottle" / "train" / "good" / ".DS_Store").write_bytes(b"\x00")
    (data_copy / "bottle" / "test" / "good" / "Thumbs.db").write_bytes(b"\x00")
    (data_copy / "bottle" / "test" / "desktop.ini").write_bytes(b"\x00")
    files = scan_mvtec_category(data_copy, "bottle")
    assert not files.problems and len(files.warnings) == 3
    assert load_category("mvtec", data_copy, "bottle", 64).train_images.shape[0] == 6

    notes = data_copy / "bottle" / "train" / "good" / "notes.txt"
    notes.write_text("x")
    err = load_error(data_copy)
    assert any(str(notes) in p and "not an image" in p for p in err.problems)


def test_upper_case_suffix_and_grayscale_rgba_16bit_files_load(data_copy):
    good = data_copy / "bottle" / "train" / "good"
    (good / "000.png").rename(good / "000.PNG")
    rgb = np.asarray(Image.open(good / "001.png"))
    write_png(good / "001.png", rgb.mean(axis=2).astype(np.uint8))
    write_png(good / "002.png", np.concatenate([rgb, np.full((64, 64, 1), 128, np.uint8)], axis=2))
    write_png(good / "003.png", (rgb.mean(axis=2) * 257).astype(np.uint16))
    data = load_category("mvtec", data_copy, "bottle", 64)
    assert data.train_images.shape == (6, 3, 64, 64) and data.train_images.dtype == torch.uint8
    assert (data.train_images[2].permute(1, 2, 0).numpy() == rgb).all()
    assert 50 < data.train_images[3].float().mean() < 250  # scaled from 16 bits, not clipped to 255
    assert data.train_paths[0].endswith("000.PNG")


def test_mask_named_like_its_image_is_accepted(data_copy):
    defect = defect_types("bottle")[0]
    gt = data_copy / "bottle" / "ground_truth" / defect
    (gt / "000_mask.png").rename(gt / "000.png")
    assert load_category("mvtec", data_copy, "bottle", 64).test_masks.any()
    shutil.copy(gt / "000.png", gt / "000_mask.png")  # now two masks for one image
    err = load_error(data_copy)
    assert any("second mask" in p for p in err.problems)


def test_missing_test_folders(data_copy):
    shutil.rmtree(data_copy / "bottle" / "test" / "good")
    err = load_error(data_copy)
    assert any(str(data_copy / "bottle" / "test" / "good") in p for p in err.problems)
    shutil.rmtree(data_copy / "bottle" / "test")
    err = load_error(data_copy)
    assert any(str(data_copy / "bottle" / "test") in p and "folder missing" in p for p in err.problems)
