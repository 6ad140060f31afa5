"""VisA reader: the official split file decides train/test and pairs masks; masks binarise on
non-zero; every bad input is listed with its path (end to end on a generated look-alike)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from memseg.data.images import read_mask
from memseg.data.loading import load_category, scan_category
from memseg.data.types import DataError
from memseg.data.visa import SPLIT_FILE


def _rows(root):
    with open(root / SPLIT_FILE, newline="") as f:
        return list(csv.reader(f))


def _write_rows(root, rows):
    with open(root / SPLIT_FILE, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_split_file_decides_train_and_test_and_pairs_masks(lookalike):
    root = lookalike("visa")
    rows = [r for r in _rows(root)[1:] if r[0] == "candle"]
    files = scan_category("visa", root, "candle")
    assert not files.problems and files.masks_nonzero
    assert sorted(files.train) == sorted(root / r[3] for r in rows if r[1] == "train")
    expected = {root / r[3]: (root / r[4] if r[4] else None) for r in rows if r[1] == "test"}
    assert {t.path: t.mask for t in files.test} == expected
    assert all(t.path.suffix == ".JPG" for t in files.test) and all(t.mask.suffix == ".png" for t in files.test if t.mask)

    data = load_category("visa", root, "candle", 32)
    n_train, n_good, n_bad = (
        sum(r[1] == "train" for r in rows),
        sum(r[1:3] == ["test", "normal"] for r in rows),
        sum(r[2] == "anomaly" for r in rows),
    )
    assert data.train_images.shape == (n_train, 3, 32, 32)
    assert data.test_labels.tolist() == [0] * n_good + [1] * n_bad
    assert data.test_masks is not None and all(m.any() for m in data.test_masks[data.test_labels == 1])
    assert not data.test_masks[data.test_labels == 0].any()


def test_masks_with_small_per_instance_values_keep_every_region(lookalike_copy):
    root = lookalike_copy("visa")
    row = next(r for r in _rows(root)[1:] if r[0] == "candle" and r[2] == "anomaly")
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[2:6, 2:6] = 1  # region 1: its value is below half of the maximum
    mask[20:30, 20:30] = 3
    Image.fromarray(mask).save(root / row[4])
    assert read_mask(root / row[4], nonzero=True).sum() == 16 + 100
    assert read_mask(root / row[4]).sum() == 100  # the half-max rule (MVTec's) would drop region 1
    data = load_category("visa", root, "candle", 32)
    index = data.test_paths.index(str(root / row[3]))
    assert data.test_masks[index].sum() == 116


def test_bad_inputs_are_all_listed_with_their_paths(lookalike_copy):
    root = lookalike_copy("visa")
    rows = _rows(root)
    header, body = rows[0], rows[1:]
    anomalies = [r for r in body if r[0] == "candle" and r[2] == "anomaly"]
    (root / anomalies[0][4]).unlink()  # mask file missing
    anomalies[1][4] = ""  # mask column empty
    normal = next(r for r in body if r[0] == "candle" and r[1] == "test")
    (root / normal[3]).unlink()  # image missing
    next(r for r in body if r[0] == "candle" and r[1] == "train")[2] = "anomaly"  # an anomaly to train on
    body.append(["candle", "test", "anomaly", anomalies[2][3], anomalies[2][4]])  # listed twice
    body.append(["candle", "val", "normal", normal[3], ""])  # unknown split
    body.append(["candle", "test", "normal", "../outside.JPG", ""])  # leaves the root
    _write_rows(root, [header, *body])
    with pytest.raises(DataError) as err:
        load_category("visa", root, "candle", 32)
    text = "\n".join(err.value.problems)
    assert f"{root / anomalies[0][4]}: mask of {root / anomalies[0][3]} missing" in text
    assert f"{root / anomalies[1][3]}: anomalous test image without a mask" in text
    assert f"{root / normal[3]}: image missing" in text
    assert "in the training split" in text and "split 'val'" in text and "leaves the data root" in text
    assert f"{root / anomalies[2][3]} is listed again" in text
    assert str(root / SPLIT_FILE) in text  # every problem of a row names the split file and line


def test_missing_split_file_wrong_header_and_unlisted_category(lookalike_copy):
    root = lookalike_copy("visa")
    rows = _rows(root)
    _write_rows(root, [["object", "split", "label", "image"], *rows[1:]])
    with pytest.raises(DataError, match="expected object,split,label,image,mask"):
        load_category("visa", root, "candle", 32)
    _write_rows(root, [rows[0], *(r for r in rows[1:] if r[0] != "pcb1")])
    with pytest.raises(DataError, match="no rows for category 'pcb1'"):
        load_category("visa", root, "pcb1", 32)
    (root / SPLIT_FILE).unlink()
    with pytest.raises(DataError) as err:
        load_category("visa", root, "candle", 32)
    assert f"{root / SPLIT_FILE}: split file missing" in str(err.value) and "1cls.csv" in str(err.value)
    with pytest.raises(DataError, match="valid categories: candle"):
        load_category("visa", root, "bottle", 32)
