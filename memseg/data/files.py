"""The files of one category as a reader found them on disk, and how they become CategoryData.

Readers (mvtec.py, folder.py) only list and pair files, with the helpers they share here (the
data root check, masks paired with images by stem); this module decodes them, once, and is also
what validation uses to find unreadable files and masks of the wrong size without resizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from memseg.data.images import (
    DECODE_ERRORS,
    parallel_map,
    probe,
    read_mask,
    read_rgb,
    resize_mask,
    resize_rgb,
    stack_or_empty,
)
from memseg.data.types import CategoryData, DataError

GOOD = "good"  # the defect type of normal images, as MVTec AD names its folders
MASK_SUFFIX = "_mask"  # `000_mask.png` is the mask of `000.png` (MVTec AD's naming)


def check_root(root: Path, layout: str) -> Path:
    """`root` as a Path, or a DataError that names it and the expected `layout`."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(f"data root {root} {what}", [layout])
    return root


def image_stem(mask: Path) -> str:
    """The stem of the image a mask belongs to: `000` for `000_mask.png` and for `000.png`."""
    return mask.stem[: -len(MASK_SUFFIX)] if mask.stem.endswith(MASK_SUFFIX) else mask.stem


def pair_by_stem(masks: list[Path], problems: list[str]) -> dict[str, Path]:
    """Masks by the stem of the image they belong to. Two masks for one image are a problem."""
    by_stem: dict[str, Path] = {}
    for mask in masks:
        stem = image_stem(mask)
        if stem in by_stem:
            problems.append(f"{mask}: a second mask for image {stem!r} (first: {by_stem[stem]}); keep one")
        else:
            by_stem[stem] = mask
    return by_stem


@dataclass(frozen=True)
class TestFile:
    """One test image, its defect type ("good" for normal images) and its mask file (None for a
    normal image, whose mask is all zeros, and for every image of a data set without masks)."""

    path: Path
    defect_type: str
    mask: Path | None = None

    @property
    def is_anomalous(self) -> bool:
        return self.defect_type != GOOD


@dataclass(frozen=True)
class CategoryFiles:
    """What a reader found for one category. `problems` are errors (the category cannot be
    loaded until they are fixed); `warnings` are files that were ignored on purpose."""

    category: str
    folder: Path
    train: tuple[Path, ...]
    test: tuple[TestFile, ...]
    has_masks: bool
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    masks_nonzero: bool = False  # binarise masks on any non-zero pixel (VisA), not at half their max
    # Defect-free images the data set sets aside from training and testing (MVTec AD 2's
    # validation/good), sorted by name: what a job calibrates its thresholds on (memseg.calibration).
    validation: tuple[Path, ...] = ()
    # Test images without ground truth, as (split, path) sorted by split then name (MVTec AD 2's
    # test_private/ and test_private_mixed/): predicted only when asked, never scored here.
    private: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def missing(cls, category: str, folder: Path, layout: str, has_masks: bool) -> CategoryFiles:
        """A category whose folder does not exist: one problem naming it and the expected layout."""
        return cls(category, folder, (), (), has_masks, (f"{folder}: category folder missing; {layout}",), ())

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and defect type: {"train": {"good": n}, "test": {type: n}, "masks": {type: n}}."""
        test: dict[str, int] = {}
        masks: dict[str, int] = {}
        for item in self.test:
            test[item.defect_type] = test.get(item.defect_type, 0) + 1
            if item.mask is not None:
                masks[item.defect_type] = masks.get(item.defect_type, 0) + 1
        return {"train": {GOOD: len(self.train)} if self.train else {}, "test": test, "masks": masks}


def inspect(files: CategoryFiles) -> list[str]:
    """Decode every image and mask fully (not resized) and compare each mask's size with its
    image's. Returns one problem per unreadable or truncated file and per mismatched mask."""

    def check(item: TestFile | Path) -> list[str]:
        path = item.path if isinstance(item, TestFile) else item
        mask = item.mask if isinstance(item, TestFile) else None
        problems = []
        try:
            image_size = probe(path, pixels=True)
        except DECODE_ERRORS as exc:
            problems.append(_unreadable(path, exc))
            image_size = None
        if mask is not None:
            try:
                mask_size = probe(mask)
            except DECODE_ERRORS as exc:
                problems.append(_unreadable(mask, exc))
            else:
                if image_size is not None and mask_size != image_size:
                    problems.append(_size_mismatch(mask, mask_size, path, image_size))
        return problems

    items: list[TestFile | Path] = [*files.train, *files.validation, *files.test]
    results = parallel_map(check, items)
    return [p for problems in results for p in problems]


def decode(files: CategoryFiles, image_size: int, native_masks: bool = False, private: bool = False) -> CategoryData:
    """Decode and resize every file once (images bilinear with antialias, masks nearest then
    binarised). With `native_masks` the binarised masks are also kept at their original size
    (for native-resolution evaluation). Raises DataError listing every problem: those the reader
    found, every file that does not decode and every mask whose size differs from its image's."""
    if files.problems:
        raise DataError(f"{files.category}: the data in {files.folder} cannot be loaded", list(files.problems))

    def load_train(path: Path) -> torch.Tensor | str:
        try:
            return resize_rgb(read_rgb(path), image_size)
        except DECODE_ERRORS as exc:
            return _unreadable(path, exc)

    train = parallel_map(load_train, files.train)
    validation = parallel_map(load_train, files.validation)
    unscored = parallel_map(load_train, [p for _, p in files.private]) if private else []
    test = parallel_map(lambda item: _load_test_item(item, image_size, files.masks_nonzero, native_masks), files.test)
    problems = [r for r in [*train, *validation, *unscored] if isinstance(r, str)]
    problems += [p for r in test if isinstance(r, list) for p in r]
    if problems:
        raise DataError(f"{files.category}: {len(problems)} unreadable or mismatched file(s) in {files.folder}", problems)
    train_images = [r for r in train if isinstance(r, torch.Tensor)]
    decoded = [r for r in test if isinstance(r, tuple)]

    size = (image_size, image_size)
    masks = stack_or_empty((m for _, m, _ in decoded), size, torch.bool) if files.has_masks else None
    # native_masks: every decoded item carries its mask at its original size
    masks_native = tuple(n for _, _, n in decoded if n is not None) if files.has_masks and native_masks else None
    return CategoryData(
        category=files.category,
        train_images=stack_or_empty(train_images, (3, *size), torch.uint8),
        test_images=stack_or_empty((img for img, _, _ in decoded), (3, *size), torch.uint8),
        test_labels=torch.tensor([int(item.is_anomalous) for item in files.test], dtype=torch.int64),
        test_masks=masks,
        test_paths=tuple(str(item.path) for item in files.test),
        test_defect_types=tuple(item.defect_type for item in files.test),
        train_paths=tuple(str(p) for p in files.train),
        test_masks_native=masks_native,
        validation_images=(
            stack_or_empty((r for r in validation if isinstance(r, torch.Tensor)), (3, *size), torch.uint8)
            if files.validation
            else None
        ),
        validation_paths=tuple(str(p) for p in files.validation),
        private_images=(
            stack_or_empty((r for r in unscored if isinstance(r, torch.Tensor)), (3, *size), torch.uint8) if private else None
        ),
        private_items=tuple((split, str(p)) for split, p in files.private) if private else (),
    )


def _load_test_item(
    item: TestFile, image_size: int, masks_nonzero: bool, native_masks: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | list[str]:
    """One test image, resized, with its mask resized (all zeros without one) and, with
    `native_masks`, also at its original size; or the problems that stop it from decoding."""
    problems = []
    try:
        rgb = read_rgb(item.path)
    except DECODE_ERRORS as exc:
        problems.append(_unreadable(item.path, exc))
        rgb = None
    mask = None
    if item.mask is not None:
        try:
            mask = read_mask(item.mask, nonzero=masks_nonzero)
        except DECODE_ERRORS as exc:
            problems.append(_unreadable(item.mask, exc))
        else:
            if rgb is not None and mask.shape != rgb.shape[:2]:
                problems.append(_size_mismatch(item.mask, mask.shape[::-1], item.path, rgb.shape[1::-1]))
    if problems or rgb is None:
        return problems
    if mask is None:
        mask = np.zeros(rgb.shape[:2], dtype=bool)
    native = torch.from_numpy(np.ascontiguousarray(mask)) if native_masks else None
    return resize_rgb(rgb, image_size), resize_mask(mask, image_size), native


def _unreadable(path: Path, exc: BaseException) -> str:
    return f"{path}: cannot be decoded ({type(exc).__name__}: {exc}); expected a complete, readable image file"


def _size_mismatch(mask: Path, mask_size: tuple[int, int], image: Path, image_size: tuple[int, int]) -> str:
    return (
        f"{mask}: mask is {mask_size[0]}x{mask_size[1]} px but its image {image} is "
        f"{image_size[0]}x{image_size[1]} px; a mask must have the size of its image"
    )
