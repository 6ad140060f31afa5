"""Reader for a generic folder data set: your own normal and abnormal images, masks optional.

    <root>/<category>/normal/*.png       normal images (train, and held-out normal test images)
    <root>/<category>/abnormal/*.png     anomalous test images
    <root>/<category>/masks/<stem>.png   optional; a mask per abnormal image, named like the image
                                         or `<stem>_mask.png` (any image suffix)

Images may be .png, .jpg, .jpeg, .bmp or .tif(f), in any case. The split of the normal images
does not depend on the seed, so every seed sees the same test set: sorted by file name, every
5th image (the 5th, 10th, 15th, ...) is held out as a normal test image and the others are for
training. A category therefore needs at least 5 normal images. Without a masks folder there are
no masks (test_masks is None) and only image-level metrics are defined; with one, every abnormal
image needs its mask and normal test images get all-zero masks.
"""

from __future__ import annotations

from pathlib import Path

from memseg.data.files import GOOD, CategoryFiles, TestFile, pair_by_stem
from memseg.data.images import list_folder

LAYOUT = (
    "expected folder layout: <root>/<category>/normal/*.png (normal images), "
    "<root>/<category>/abnormal/*.png (anomalous images) and optionally "
    "<root>/<category>/masks/<stem>.png (one mask per abnormal image)"
)
HOLDOUT_EVERY = 5  # every 5th normal image in name order is a normal test image
ABNORMAL = "abnormal"  # the defect type of abnormal images (the folder set has no finer types)


def split_normal(images: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, test) of the normal images, sorted by name: index i with i % 5 == 4 goes to test."""
    ordered = sorted(images, key=lambda p: p.name)
    test = [p for i, p in enumerate(ordered) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    train = [p for i, p in enumerate(ordered) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    return train, test


def scan_folder_category(root: Path, category: str) -> CategoryFiles:
    """List, split and pair the files of one category without decoding them; every layout
    problem is collected in `problems`."""
    folder = Path(root) / category
    if not folder.is_dir():
        return CategoryFiles.missing(category, folder, LAYOUT, has_masks=False)
    problems: list[str] = []
    warnings: list[str] = []

    normal = _images(folder / "normal", problems, warnings)
    abnormal = _images(folder / ABNORMAL, problems, warnings)
    if (folder / "normal").is_dir() and len(normal) < HOLDOUT_EVERY:
        problems.append(
            f"{folder / 'normal'}: {len(normal)} normal image(s); at least {HOLDOUT_EVERY} are needed "
            f"(every {HOLDOUT_EVERY}th is held out as a normal test image)"
        )
    if (folder / ABNORMAL).is_dir() and not abnormal:
        problems.append(f"{folder / ABNORMAL}: no abnormal images; expected anomalous images here")
    for entry in sorted(folder.iterdir()):
        if entry.name not in ("normal", ABNORMAL, "masks"):
            warnings.append(f"{entry}: ignored ({LAYOUT})")

    train, normal_test = split_normal(normal)
    test = [TestFile(p, GOOD) for p in normal_test]
    mask_dir = folder / "masks"
    has_masks = mask_dir.is_dir()
    if not has_masks:
        test += [TestFile(p, ABNORMAL) for p in abnormal]
    else:
        masks = pair_by_stem(_images(mask_dir, problems, warnings), problems)
        normal_stems = {p.stem for p in normal}
        for image in abnormal:
            mask = masks.pop(image.stem, None)
            if mask is None:
                problems.append(f"{image}: abnormal image without a mask; expected {mask_dir / image.stem}.png")
            test.append(TestFile(image, ABNORMAL, mask))
        for stem, mask in masks.items():
            if stem in normal_stems:
                warnings.append(f"{mask}: ignored (normal images have all-zero masks)")
            else:
                problems.append(f"{mask}: mask without an image; expected {folder / ABNORMAL / stem}.png")
    return CategoryFiles(category, folder, tuple(train), tuple(test), has_masks, tuple(problems), tuple(warnings))


def _images(folder: Path, problems: list[str], warnings: list[str]) -> list[Path]:
    if not folder.is_dir():
        problems.append(f"{folder}: folder missing; {LAYOUT}")
        return []
    listing = list_folder(folder)
    warnings += [f"{p}: ignored (stray file)" for p in listing.strays]
    for other in listing.others:
        kind = "unexpected folder" if other.is_dir() else "not an image"
        problems.append(f"{other}: {kind}; {folder.name}/ holds image files only")
    return list(listing.images)
