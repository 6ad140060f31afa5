"""One entry point to every data set kind: load a category, or validate a whole data root up front.

`check` is the preflight the harness runs before any job starts: it lists every problem of every
category at once (missing folders, unpaired masks, unreadable files, masks of the wrong size), so
a user fixes the data in one go instead of one failed job at a time.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from memseg.data import synthetic
from memseg.data.files import CategoryFiles, check_root, decode, inspect
from memseg.data.images import is_stray
from memseg.data.registry import Dataset, check_categories, check_dataset_kind, get_dataset
from memseg.data.registry import check_category as check_category_name
from memseg.data.types import CategoryData, DataError
from memseg.names import UnknownNameError


@dataclass(frozen=True)
class ValidationReport:
    """What `validate` found. counts[category][split][defect_type] = number of files, with split
    in ("train", "test", "masks"); `problems` must be fixed before loading; `warnings` name
    files that are ignored on purpose (stray files such as .DS_Store)."""

    kind: str
    root: str
    categories: tuple[str, ...]
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    has_masks: dict[str, bool] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def check_kind(kind: str) -> str:
    """`kind` if it is a data set kind, else a DataError listing the valid kinds."""
    try:
        return check_dataset_kind(kind)
    except UnknownNameError as err:
        raise DataError.unknown(err) from None


def _dataset(kind: str) -> Dataset:
    return get_dataset(check_kind(kind))


def reader(kind: str) -> Callable[[Path, str], CategoryFiles]:
    """The function that lists one category of `kind` (the registry names it as module:function)."""
    module, function = _dataset(kind).reader.split(":")
    return getattr(importlib.import_module(module), function)


def layout(kind: str) -> str:
    """The folder layout data of `kind` must have, in words (its reader module's LAYOUT)."""
    return sys.modules[reader(kind).__module__].LAYOUT


def scan_category(kind: str, root: Path | str, category: str) -> CategoryFiles:
    """The files of one category (not decoded), with every layout problem listed."""
    return reader(kind)(Path(root), category)


def check_category(kind: str, category: str) -> str:
    """`category` if data sets of `kind` have it, else a DataError listing the valid names."""
    check_kind(kind)
    try:
        return check_category_name(category, kind)
    except UnknownNameError as err:  # the registry's check, as the DataError the data layer raises
        raise DataError.unknown(err) from None


def load_category(
    kind: str,
    root: Path | str,
    category: str,
    image_size: int,
    native_masks: bool = False,
    private: bool = False,
    *,
    train_only: bool = False,
) -> CategoryData:
    """Decode one category at `image_size` px (and, with `native_masks`, keep each test mask at its
    original size too; with `private`, decode the test images without ground truth too) with the
    reader the registry names for `kind` ("synthetic" is our generated set, read with the MVTec AD
    reader). With `train_only` no test file is opened (the test set is then empty): a recipe
    search's jobs read only training images. Raises DataError listing every problem of that category."""
    check_category(kind, category)
    root = check_root(Path(root), layout(kind))
    files = scan_category(kind, root, category)
    if train_only:
        files = dataclasses.replace(files, test=())
    return decode(files, image_size, native_masks, private)


def discover_categories(kind: str, root: Path | str) -> tuple[str, ...]:
    """The categories present under `root`: for a generated set those its marker lists, for a
    data set with known categories the sub-folders named like them, for folder data every
    sub-folder."""
    root = Path(root)
    dataset = _dataset(kind)
    if kind == "synthetic":
        marker = synthetic.read_marker(root)
        if marker is not None:
            return tuple(marker["categories"])
    if not root.is_dir():
        return ()
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_stray(p))
    if dataset.categories is None:
        return tuple(names)
    return tuple(n for n in dataset.categories if n in names)


def validate(kind: str, root: Path | str, categories: Sequence[str] | None = None) -> ValidationReport:
    """Check the layout of every category and decode every file fully (that is the only way to
    find truncated images), without resizing. Never raises for a data problem: everything found
    is in the report. `categories` None means those present (see discover_categories)."""
    check_kind(kind)
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        return ValidationReport(kind, str(root), tuple(categories or ()), problems=(f"{root}: data root {what}; {layout(kind)}",))

    problems: list[str] = []
    warnings: list[str] = []
    if categories is None:
        categories = discover_categories(kind, root)
        if not categories:
            problems.append(f"{root}: no category folders found; {layout(kind)}")
    categories = tuple(categories)
    if kind == "synthetic" and synthetic.read_marker(root) is None:
        problems.append(
            f"{root / synthetic.MARKER}: missing, so this generated set is incomplete (interrupted?); generate it again"
        )
    try:
        check_categories(categories, dataset=kind)
    except UnknownNameError as err:  # a problem like any other: the known categories are still checked
        unknown = DataError.unknown(err)
        problems.append(f"{unknown.summary}; {'; '.join(unknown.problems)}")
        categories = tuple(c for c in categories if c not in err.bad)

    counts: dict[str, dict[str, dict[str, int]]] = {}
    has_masks: dict[str, bool] = {}
    for category in categories:
        files = scan_category(kind, root, category)
        problems += files.problems
        warnings += files.warnings
        problems += inspect(files)
        counts[category] = files.counts()
        has_masks[category] = files.has_masks
    return ValidationReport(kind, str(root), categories, counts, has_masks, tuple(problems), tuple(warnings))


def check(kind: str, root: Path | str, categories: Sequence[str] | None = None) -> ValidationReport:
    """`validate`, raising DataError that lists every problem when there is any."""
    report = validate(kind, root, categories)
    if not report.ok:
        raise DataError(f"{len(report.problems)} problem(s) in the {kind} data at {root}", list(report.problems))
    return report
