"""Reader for VisA (Visual Anomaly, Zou et al. ECCV 2022) through its official one-class split.

    <root>/split_csv/1cls.csv                                   object,split,label,image,mask
    <root>/<category>/Data/Images/Normal/0000.JPG               normal images (train and test)
    <root>/<category>/Data/Images/Anomaly/000.JPG               anomalous images (test)
    <root>/<category>/Data/Masks/Anomaly/000.png                their masks

The split file, not the folders, says which image is for training and which for testing (this is
the protocol every VisA number in the literature uses), and pairs each anomalous image with its
mask. Masks mark the defect with non-zero pixels of small, possibly different values (one per
defect instance), so they are binarised on non-zero, never on 255 or half their maximum.
Paths in the split file are relative to <root> and must stay inside it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from memseg.data.files import GOOD, CategoryFiles, TestFile
from memseg.data.images import is_image_file

SPLIT_FILE = Path("split_csv") / "1cls.csv"
HEADER = ("object", "split", "label", "image", "mask")
NORMAL, ANOMALY = "normal", "anomaly"  # the labels of 1cls.csv; ANOMALY is also the defect type
LAYOUT = (
    "expected VisA layout: <root>/split_csv/1cls.csv (columns object,split,label,image,mask; paths relative "
    "to <root>), images such as <root>/<category>/Data/Images/{Normal,Anomaly}/*.JPG and masks such as "
    "<root>/<category>/Data/Masks/Anomaly/*.png"
)


@dataclass(frozen=True)
class SplitRow:
    """One line of the split file (`line` counts from 1, the header being line 1)."""

    line: int
    category: str
    split: str
    label: str
    image: str
    mask: str


def read_split(path: Path, problems: list[str]) -> list[SplitRow]:
    """The rows of the split file; a wrong header or a malformed row is a problem naming its line."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"{path}: cannot be read ({type(exc).__name__}: {exc}); {LAYOUT}")
        return []
    if not lines or tuple(c.strip() for c in lines[0]) != HEADER:
        found = ",".join(lines[0]) if lines else "an empty file"
        problems.append(f"{path}: header is {found!r}; expected {','.join(HEADER)}")
        return []
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if not cells:
            continue
        if len(cells) != len(HEADER):
            problems.append(f"{path}:{number}: {len(cells)} column(s); expected {len(HEADER)} ({','.join(HEADER)})")
            continue
        rows.append(SplitRow(number, *(c.strip() for c in cells)))
    return rows


def scan_visa_category(root: Path, category: str) -> CategoryFiles:
    """The files of one category as the split file lists them, checked against the disk without
    decoding; every problem (missing split file, unknown split or label, missing image or mask,
    anomalous image without a mask, anomaly in the training split) is listed, not raised."""
    root = Path(root)
    folder = root / category
    split_path = root / SPLIT_FILE
    problems: list[str] = []
    warnings: list[str] = []
    if not split_path.is_file():
        problems.append(f"{split_path}: split file missing; {LAYOUT}")
        return CategoryFiles(category, folder, (), (), True, tuple(problems), (), masks_nonzero=True)
    rows = [r for r in read_split(split_path, problems) if r.category == category]
    if not folder.is_dir():
        problems.append(f"{folder}: category folder missing; {LAYOUT}")
    if not rows and not problems:
        problems.append(f"{split_path}: no rows for category {category!r}; expected its train and test images listed there")

    train: list[Path] = []
    test: list[TestFile] = []
    seen: dict[Path, int] = {}
    for row in rows:
        where = f"{split_path}:{row.line}"
        image = _inside(root, row.image, where, "image", problems)
        if row.split not in ("train", "test") or row.label not in (NORMAL, ANOMALY):
            problems.append(
                f"{where}: split {row.split!r}, label {row.label!r}; expected split train|test and label {NORMAL}|{ANOMALY}"
            )
            continue
        if image is None:
            continue
        if image in seen:
            problems.append(f"{where}: {image} is listed again (first on line {seen[image]}); list each image once")
            continue
        seen[image] = row.line
        if row.label == NORMAL and row.mask:
            warnings.append(f"{where}: mask {row.mask} of a normal image ignored (normal images have all-zero masks)")
        if row.split == "train":
            if row.label == ANOMALY:
                problems.append(f"{where}: anomalous image {image} in the training split; MemSeg trains on normal images only")
            else:
                train.append(image)
        elif row.label == NORMAL:
            test.append(TestFile(image, GOOD))
        elif not row.mask:
            problems.append(
                f"{image}: anomalous test image without a mask ({where} leaves the mask column empty); expected a mask path there"
            )
            test.append(TestFile(image, ANOMALY))
        else:
            mask = _inside(root, row.mask, where, f"mask of {image}", problems)
            test.append(TestFile(image, ANOMALY, mask))

    if rows:
        _check_counts(split_path, category, train, test, problems)
    return CategoryFiles(category, folder, tuple(train), tuple(test), True, tuple(problems), tuple(warnings), masks_nonzero=True)


def _check_counts(split_path: Path, category: str, train: list[Path], test: list[TestFile], problems: list[str]) -> None:
    """A problem for each kind of image the category's rows leave empty: training, normal test and
    anomalous test images."""
    if not train:
        problems.append(f"{split_path}: no training images for {category!r}; expected rows '{category},train,{NORMAL},...'")
    if not any(not t.is_anomalous for t in test):
        problems.append(f"{split_path}: no normal test images for {category!r}; image AUROC needs some")
    if not any(t.is_anomalous for t in test):
        problems.append(f"{split_path}: no anomalous test images for {category!r}")


def _inside(root: Path, relative: str, where: str, what: str, problems: list[str]) -> Path | None:
    """root / relative when it is an existing image file inside root; else None and a problem."""
    if not relative:
        problems.append(f"{where}: empty {what} path; {LAYOUT}")
        return None
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        problems.append(f"{where}: {what} path {relative!r} leaves the data root; paths must be relative to {root}")
        return None
    path = root / rel
    if not path.is_file():
        problems.append(f"{path}: {what} missing (listed in {where}); {LAYOUT}")
        return None
    if not is_image_file(path):
        problems.append(f"{path}: {what} is not an image file (listed in {where})")
        return None
    return path
