"""Cheap checks of what a job will read (data layout, backbone weights file, texture folder), run
by both command lines before any model is built or Ray is started, so a mistake costs seconds and
is answered in one message (memseg.cli_errors) instead of surfacing from inside a job.

Nothing here decodes a data set: the full check (every image decoded) stays the harness's
preflight and `python -m harness data check`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from memseg.cli_errors import UserError, user_error
from memseg.data.types import DataError

PLAIN_WEIGHTS = ("imagenet", "none")


def check_data(
    kind: str, root: str | Path, categories: Iterable[str], needed: Mapping[str, tuple[int, str]] | None = None
) -> None:
    """The data root exists and each category has the folder layout of `kind` (files found, not
    decoded), and at least the normal training images `needed` says (category -> how many, why:
    memseg.config.train_images_needed). Raises DataError naming every offending path and the
    expected layout."""
    # Here, not at the top (as below): the data layer imports torch, and the harness's CLI imports
    # this module at start-up, so a refused flag or --help answers before torch is loaded.
    from memseg.data.files import check_root
    from memseg.data.loading import layout, scan_category

    folder = check_root(Path(root), layout(kind))
    problems: list[str] = []
    for category in categories:
        problems += scan_category(kind, folder, category).problems
    problems += too_few_train_images(kind, folder, needed or {})
    if problems:
        raise DataError(f"the {kind} data at {folder} cannot be used", problems)


def too_few_train_images(kind: str, root: str | Path, needed: Mapping[str, tuple[int, str]]) -> list[str]:
    """One line for each category of `needed` (category -> normal training images its jobs need,
    why) that has fewer (files found, not decoded; a category whose layout is wrong is left to the
    layout check). Without this a job would hold out more images than there are and fail only
    when it runs."""
    from memseg.data.loading import scan_category  # start-up time: torch (see check_data)

    problems: list[str] = []
    for category, (count, why) in needed.items():
        files = scan_category(kind, Path(root), category)
        if not files.problems and len(files.train) < count:
            problems.append(f"{files.folder}: {len(files.train)} normal training images, but a job needs {count} ({why})")
    return problems


def check_weights(weights: str) -> None:
    """'imagenet', 'none', or a file that loads into ResNet18 (built here without downloading)."""
    if weights in PLAIN_WEIGHTS:
        return
    path = Path(weights)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(
            f"backbone weights {weights} {what}; expected 'imagenet', 'none' or the path of a ResNet18 state-dict file"
        )
    from memseg.backbone import create_encoder  # start-up time: timm and torch (see check_data)

    try:
        create_encoder(weights)
    except ValueError as err:
        raise user_error(err) from None


def check_texture_dir(path: str | None) -> None:
    """None (procedural textures) or a folder holding at least one image."""
    if path is None:
        return
    # start-up time: torch (see check_data)
    from memseg.data.textures import find_texture_images

    folder = Path(path)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"texture folder {folder} {what}", ["expected a folder of images, e.g. DTD's dtd/images/<class>/*.jpg"])
    if not find_texture_images(folder):
        raise DataError(f"texture folder {folder} holds no images", ["expected image files (.jpg, .png, ...) in it"])


def check_model_dir(path: str | Path) -> Path:
    """A model directory written by `python -m memseg train --out` (config.json and weights)."""
    from memseg.artefacts import CONFIG, WEIGHTS  # start-up time: torch and safetensors (see check_data)

    folder = Path(path)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(
            f"model directory {folder} {what}; expected a folder written by `python -m memseg train --out DIR` "
            f"(it holds {CONFIG} and {WEIGHTS})"
        )
    missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"{folder} is not a MemSeg model directory: {', '.join(missing)} missing; "
            "expected a folder written by `python -m memseg train --out DIR`"
        )
    return folder


def find_images(where: str) -> list[Path]:
    """The images of a folder (not recursive), or those a glob pattern matches, sorted by path; a
    UserError when there are none. Known stray files (.DS_Store, ...) and non-images are skipped."""
    import glob

    from memseg.data.images import is_image_file, is_stray  # start-up time: torch and PIL (see check_data)

    folder = Path(where)
    if folder.is_dir():
        found = [p for p in folder.iterdir() if p.is_file()]
    elif any(ch in where for ch in "*?["):
        found = [Path(p) for p in glob.glob(where, recursive=True) if Path(p).is_file()]
    else:
        raise UserError(f"--images {where}: no such folder; expected a folder of images or a glob such as 'parts/*.png'")
    images = sorted(p for p in found if is_image_file(p) and not is_stray(p))
    if not images:
        raise UserError(f"--images {where}: no image found (.png, .jpg, .bmp, .tif, ...)")
    return images
