"""Reader for MVTec AD 2: eight categories, a validation split and three test sets, of which only
test_public has ground truth.

    <root>/<category>/train/good/000_regular.png                        normal training images
    <root>/<category>/validation/good/*.png                             normal validation images
    <root>/<category>/test_public/good/*.png                            normal test images
    <root>/<category>/test_public/bad/*.png                             anomalous test images
    <root>/<category>/test_public/ground_truth/bad/<stem>_mask.png      their masks
    <root>/<category>/test_private/, test_private_mixed/                no ground truth

What is evaluated is test_public: the private test sets have no masks and no labels (they are
scored by MVTec's evaluation server), so asking to evaluate on them is refused with a message
that says so, and they are reported as ignored, never silently. MemSeg trains on train/good and
selects no checkpoint; validation/good is read for one thing, the thresholds a job fixes before
it sees the test set (memseg.calibration), as MVTec AD 2's authors choose theirs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from memseg.data.files import CategoryFiles
from memseg.data.images import list_folder
from memseg.data.mvtec import TreeLayout, scan_mvtec_category
from memseg.data.types import DataError

LAYOUT = (
    "expected MVTec AD 2 layout: <root>/<category>/train/good/*.png, <root>/<category>/test_public/good/*.png, "
    "<root>/<category>/test_public/bad/*.png and <root>/<category>/test_public/ground_truth/bad/<stem>_mask.png"
)
PUBLIC = "test_public"
PRIVATE = ("test_private", "test_private_mixed")
TEST_SETS = (PUBLIC, *PRIVATE)
SERVER = "https://benchmark.mvtec.com/"
AD2 = TreeLayout(layout=LAYOUT, test=PUBLIC, ground_truth=f"{PUBLIC}/ground_truth")


def check_test_set(name: str) -> str:
    """`name` if it can be evaluated here (test_public); the private sets are refused: they have
    no ground truth, so no metric can be computed from them."""
    if name == PUBLIC:
        return name
    if name in PRIVATE:
        raise DataError(
            f"MVTec AD 2's {name} cannot be evaluated here: it has no ground truth (no masks, no labels)",
            [
                f"evaluate on {PUBLIC} (the public test set, with masks), the one this benchmark reads",
                f"scores on {name} come only from MVTec's evaluation server ({SERVER}): submit anomaly maps there",
            ],
        )
    raise DataError(f"unknown MVTec AD 2 test set {name!r}", [f"valid: {', '.join(TEST_SETS)} (only {PUBLIC} is evaluated)"])


def scan_mvtec_ad2_category(root: Path, category: str) -> CategoryFiles:
    """List and pair one category's train/good and test_public files; validation/ and the private
    test sets become warnings (not read), and a category without test_public is told why the
    private sets cannot stand in for it."""
    files = scan_mvtec_category(root, category, AD2)
    folder = Path(root) / category
    if not folder.is_dir():
        return files
    warnings = list(files.warnings)
    problems = list(files.problems)
    validation: tuple[Path, ...] = ()
    good = folder / "validation" / "good"
    if good.is_dir():
        listing = list_folder(good)
        validation = listing.images
        warnings += [f"{p}: ignored (not an image)" for p in listing.strays]
        problems += [f"{p}: not an image; validation/good holds only images" for p in listing.others]
    present = [folder / name for name in PRIVATE if (folder / name).is_dir()]
    warnings += [f"{p}: not evaluated (no ground truth; scored only by {SERVER})" for p in present]
    private = tuple((p.name, image) for p in present for image in list_folder(p).images)
    if not (folder / PUBLIC).is_dir() and present:
        problems.append(
            f"{folder / PUBLIC}: missing; only {', '.join(p.name for p in present)} found, which have no ground truth "
            f"and cannot be evaluated; {LAYOUT}"
        )
    return replace(files, problems=tuple(problems), warnings=tuple(warnings), validation=validation, private=private)
