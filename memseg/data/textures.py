"""Loading a folder of texture images (DTD) as anomaly sources for MemSeg's simulation.

DTD unpacks to `dtd/images/<class>/*.jpg`; any folder works, searched recursively for images
(other files, such as DTD's labels/ and imdb/, are skipped). Each texture is cropped to its
largest centred square and resized, so textures are not distorted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from memseg.data.images import DECODE_ERRORS, center_crop_resize, is_image_file, is_stray, parallel_map, read_rgb
from memseg.data.types import DataError


def find_texture_images(path: Path | str) -> list[Path]:
    """Every image file under `path`, recursively, sorted by path (dot-files skipped)."""
    root = Path(path)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and is_image_file(p) and not any(is_stray(Path(part)) for part in p.relative_to(root).parts)
    )


def load_texture_folder(path: Path | str, size: int, max_images: int | None = None, seed: int = 0) -> torch.Tensor:
    """(K, 3, size, size) uint8 textures from `path`. With `max_images`, a subset of that many,
    drawn with `seed` (the same subset for the same seed). Raises DataError naming the path when
    it is missing or holds no images, and listing every texture that cannot be decoded."""
    root = Path(path)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(f"texture folder {root} {what}", ["expected a folder of images, e.g. DTD's dtd/images/<class>/*.jpg"])
    files = find_texture_images(root)
    if not files:
        raise DataError(
            f"texture folder {root} holds no images", ["expected image files (.jpg, .png, ...) in it or its sub-folders"]
        )
    if max_images is not None:
        if max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        if max_images < len(files):
            chosen = np.random.default_rng(seed).choice(len(files), size=max_images, replace=False)
            files = [files[i] for i in sorted(chosen)]

    def load(file: Path) -> torch.Tensor | str:
        try:
            return center_crop_resize(read_rgb(file), size)
        except DECODE_ERRORS as exc:
            return f"{file}: cannot be decoded ({type(exc).__name__}: {exc})"

    loaded = parallel_map(load, files)
    problems = [r for r in loaded if isinstance(r, str)]
    if problems:
        raise DataError(f"{len(problems)} unreadable texture image(s) in {root}", problems)
    return torch.stack(loaded)  # type: ignore[arg-type]
