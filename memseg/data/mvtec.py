"""Reader for data in MVTec AD's folder layout (the real MVTec AD and our generated set).

    <root>/<category>/train/good/000.png                    normal training images
    <root>/<category>/test/good/000.png                     normal test images (all-zero masks)
    <root>/<category>/test/<defect_type>/000.png            anomalous test images
    <root>/<category>/ground_truth/<defect_type>/000_mask.png   their masks, paired by file stem

A mask may also be named exactly like its image (`000.png`). Stray files that tools leave behind
(.DS_Store, Thumbs.db, desktop.ini, dot-files) are ignored with a warning; anything else that is
not an image where images belong is an error.

Data sets that keep MVTec's tree under other names (BTAD's ok/ko, MVTec AD 2's test_public) are
read by the same code with their own `TreeLayout`; MPDD uses MVTec's layout as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memseg.data.files import GOOD, MASK_SUFFIX, CategoryFiles, TestFile, image_stem, pair_by_stem
from memseg.data.images import IMAGE_SUFFIXES, list_folder

LAYOUT = (
    "expected MVTec AD layout: <root>/<category>/train/good/*.png, <root>/<category>/test/good/*.png, "
    "<root>/<category>/test/<defect_type>/*.png and <root>/<category>/ground_truth/<defect_type>/<stem>_mask.png"
)


@dataclass(frozen=True)
class TreeLayout:
    """Where an MVTec-style tree keeps one category's files, relative to its folder: normal
    training images in `train`/`normal`, test images in `test`/<type> (normal ones in
    `test`/`normal`), masks in `ground_truth`/<type>/<stem>`mask_suffix`.<ext>. `layout` is the
    sentence every error ends with."""

    layout: str = LAYOUT
    train: str = "train"
    test: str = "test"
    ground_truth: str = "ground_truth"
    normal: str = GOOD
    mask_suffix: str = MASK_SUFFIX


MVTEC = TreeLayout()


def scan_mvtec_category(root: Path, category: str, tree: TreeLayout = MVTEC) -> CategoryFiles:
    """List and pair the files of one category without decoding them. Every layout problem
    (missing folder, empty train/good, image without mask, mask without image, non-image file)
    is collected in `problems` rather than raised, so validation can report all of them."""
    folder = Path(root) / category
    if not folder.is_dir():
        return CategoryFiles.missing(category, folder, tree.layout, has_masks=True)
    problems: list[str] = []
    warnings: list[str] = []

    train = _scan_train(folder, tree, problems, warnings)
    test_by_type = _scan_test(folder, tree, problems, warnings)
    test: list[TestFile] = [TestFile(p, GOOD) for p in test_by_type.pop(tree.normal, [])]
    masks_by_type = _scan_ground_truth(folder, tree, set(test_by_type), problems, warnings)
    for defect_type in sorted(test_by_type):
        masks = masks_by_type.pop(defect_type, None)
        test += _pair_masks(folder, tree, defect_type, test_by_type[defect_type], masks, problems)
    return CategoryFiles(category, folder, tuple(train), tuple(test), True, tuple(problems), tuple(warnings))


def _images_of(folder: Path, problems: list[str], warnings: list[str], what: str) -> list[Path]:
    """The images of `folder`; strays become warnings, any other entry a problem."""
    listing = list_folder(folder)
    warnings += [f"{p}: ignored ({'stray file' if p.is_file() else 'hidden folder'})" for p in listing.strays]
    for other in listing.others:
        if other.is_dir():
            problems.append(f"{other}: unexpected folder; {what} holds image files only")
        else:
            problems.append(f"{other}: not an image ({', '.join(IMAGE_SUFFIXES)}); {what} holds image files only")
    return list(listing.images)


def _subfolders(folder: Path, problems: list[str], warnings: list[str], what: str) -> dict[str, Path]:
    """The sub-folders of `folder` by name; stray files are warnings, other files problems."""
    listing = list_folder(folder)
    warnings += [f"{p}: ignored ({'stray file' if p.is_file() else 'hidden folder'})" for p in listing.strays]
    subfolders = {}
    for entry in (*listing.images, *listing.others):
        if entry.is_dir():
            subfolders[entry.name] = entry
        else:
            problems.append(f"{entry}: unexpected file; {what} holds one folder per defect type")
    return subfolders


def _scan_train(folder: Path, tree: TreeLayout, problems: list[str], warnings: list[str]) -> list[Path]:
    good = folder / tree.train / tree.normal
    where = f"{tree.train}/{tree.normal}"
    if not good.is_dir():
        problems.append(f"{good}: folder missing; {tree.layout}")
        return []
    listing = list_folder(folder / tree.train)
    for entry in (*listing.strays, *listing.images, *listing.others):
        if entry != good:
            warnings.append(f"{entry}: ignored (training reads {where} only)")
    train = _images_of(good, problems, warnings, where)
    if not train:
        problems.append(f"{good}: no training images; expected normal images (*.png) here")
    return train


def _scan_test(folder: Path, tree: TreeLayout, problems: list[str], warnings: list[str]) -> dict[str, list[Path]]:
    test_dir = folder / tree.test
    if not test_dir.is_dir():
        problems.append(f"{test_dir}: folder missing; {tree.layout}")
        return {}
    by_type = {}
    for name, sub in sorted(_subfolders(test_dir, problems, warnings, f"{tree.test}/").items()):
        if sub == folder / tree.ground_truth:
            continue  # MVTec AD 2 keeps its masks inside the test folder
        images = _images_of(sub, problems, warnings, f"{tree.test}/{name}")
        if images:
            by_type[name] = images
        else:
            warnings.append(f"{sub}: empty defect-type folder, ignored")
    if tree.normal not in by_type:
        problems.append(f"{test_dir / tree.normal}: no normal test images; image AUROC needs some in {tree.test}/{tree.normal}")
    if not set(by_type) - {tree.normal}:
        problems.append(f"{test_dir}: no anomalous test images; expected {tree.test}/<defect_type>/*.png")
    return by_type


def _scan_ground_truth(
    folder: Path, tree: TreeLayout, defect_types: set[str], problems: list[str], warnings: list[str]
) -> dict[str, list[Path]]:
    """Masks by defect type. Mask folders of defect types that have no test images are problems
    (every mask in them lacks its image)."""
    gt_dir = folder / tree.ground_truth
    if not gt_dir.is_dir():
        if defect_types:
            problems.append(f"{gt_dir}: folder missing; expected {tree.ground_truth}/<defect_type>/<stem>{tree.mask_suffix}.png")
        return {}
    masks_by_type = {}
    for name, sub in sorted(_subfolders(gt_dir, problems, warnings, f"{tree.ground_truth}/").items()):
        if name == tree.normal:
            warnings.append(f"{sub}: ignored (normal test images have all-zero masks)")
            continue
        masks = _images_of(sub, problems, warnings, f"{tree.ground_truth}/{name}")
        if name in defect_types:
            masks_by_type[name] = masks
        else:
            problems += [f"{m}: mask without a test image; expected {folder / tree.test / name}/" for m in masks]
    return masks_by_type


def _pair_masks(
    folder: Path, tree: TreeLayout, defect_type: str, images: list[Path], masks: list[Path] | None, problems: list[str]
) -> list[TestFile]:
    """Pair each image `<stem>.<ext>` with `<stem>_mask.<ext>` (or `<stem>.<ext>`) by file stem."""
    gt_dir = folder / tree.ground_truth / defect_type
    expected = f"<stem>{tree.mask_suffix}.png"
    if masks is None:
        if (folder / tree.ground_truth).is_dir():
            problems.append(f"{gt_dir}: folder missing; expected a mask {expected} for each image in {tree.test}/{defect_type}")
        problems += [f"{img}: test image without a mask; expected {gt_dir / (img.stem + tree.mask_suffix)}.png" for img in images]
        return [TestFile(img, defect_type) for img in images]
    masks_by_stem = pair_by_stem(masks, problems)
    paired = []
    for img in images:
        mask = masks_by_stem.pop(img.stem, None)
        if mask is None:
            problems.append(f"{img}: test image without a mask; expected {gt_dir / (img.stem + tree.mask_suffix)}.png")
        paired.append(TestFile(img, defect_type, mask))
    problems += [
        f"{m}: mask without a test image; expected {folder / tree.test / defect_type / image_stem(m)}.png"
        for m in masks_by_stem.values()
    ]
    return paired
