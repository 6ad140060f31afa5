"""Decoding and resizing of image and mask files, shared by every reader.

One place decides which files are images, which stray files are ignored, how odd modes
(grayscale, RGBA, palette, 16-bit) become RGB uint8, and how masks are resized (nearest, then
binarised at > 0.5 of their max, never bicubic, so that pixel metrics compare with the literature).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# Suffixes (compared in lower case) read as images. MVTec AD itself has only PNGs.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Files that operating systems and tools leave in folders; ignored with a warning, never an error.
STRAY_NAMES: frozenset[str] = frozenset({".ds_store", "thumbs.db", "desktop.ini"})

# PIL raises these for a file it cannot identify or decode (truncated data is an OSError).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)

T = TypeVar("T")
R = TypeVar("R")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_stray(path: Path) -> bool:
    """A known stray file (.DS_Store, Thumbs.db, desktop.ini, any dot-file such as macOS '._x.png')."""
    return path.name.startswith(".") or path.name.lower() in STRAY_NAMES


@dataclass(frozen=True)
class FolderListing:
    """What one image folder holds: images (sorted by name), ignored strays, and everything
    else (files that are neither, and sub-folders), which readers report as problems."""

    images: tuple[Path, ...]
    strays: tuple[Path, ...]
    others: tuple[Path, ...]


def list_folder(folder: Path) -> FolderListing:
    """Sort the entries of `folder` into images, strays and others (not recursive)."""
    images, strays, others = [], [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if is_stray(entry):
            strays.append(entry)
        elif entry.is_file() and is_image_file(entry):
            images.append(entry)
        else:
            others.append(entry)
    return FolderListing(tuple(images), tuple(strays), tuple(others))


def parallel_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[fn(x) for x in items]` on a few threads: PIL decoding and torch resizing release the GIL,
    so a category of large MVTec images loads several times faster. Order is preserved."""
    workers = min(8, os.cpu_count() or 1, max(1, len(items)))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def _open_loaded(path: Path) -> Image.Image:
    """Open and fully decode `path` (Image.verify() does not notice truncated pixel data)."""
    with Image.open(path) as img:
        img.load()
        return img


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any PIL mode: 16/32-bit grayscale is scaled from 0..65535,
    float from 0..1 (or clipped when it is already 0..255), alpha is dropped, palettes expanded."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        gray = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.rint(gray * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "F":
        gray = np.asarray(img, dtype=np.float64)
        scale = 255.0 if gray.size and np.nanmax(gray) <= 1.0 else 1.0
        gray = np.clip(np.rint(np.nan_to_num(gray) * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)


def to_mask_array(img: Image.Image, nonzero: bool = False) -> np.ndarray:
    """(H, W) bool: a pixel is defective when its value is > 0.5 of the mask's max (or, with
    `nonzero`, when it is not 0: VisA's masks store small per-instance values). Palette masks
    are read by index (index 0 = background), colour masks by their brightest channel."""
    if img.mode == "P":
        values = np.asarray(img)  # palette indices
    elif img.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        values = np.asarray(img.convert("RGB")).max(axis=2)
    elif img.mode in ("LA", "PA"):
        values = np.asarray(img.getchannel(0))
    else:
        values = np.asarray(img)
    values = values.astype(np.float64)
    if nonzero:
        return values > 0
    peak = values.max() if values.size else 0.0
    if peak <= 0:
        return np.zeros(values.shape, dtype=bool)
    return values > 0.5 * peak


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB. Raises PIL's errors (see DECODE_ERRORS)."""
    return to_rgb_array(_open_loaded(path))


def read_mask(path: Path, nonzero: bool = False) -> np.ndarray:
    """Decode a mask file to (H, W) bool (see to_mask_array). Raises PIL's errors (see DECODE_ERRORS)."""
    return to_mask_array(_open_loaded(path), nonzero)


def probe(path: Path) -> tuple[int, int]:
    """Fully decode `path` and return its (width, height): the check that finds truncated files."""
    with Image.open(path) as img:
        img.load()
        return img.size


def resize_rgb(image: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, size, size) uint8, bilinear with antialias (no aliasing when
    shrinking a 1024 px MVTec image to 256)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if tensor.shape[1:] == (size, size):
        return tensor.contiguous()
    resized = F.interpolate(tensor[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def resize_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    """(H, W) bool -> (size, size) bool, nearest neighbour (a resized mask stays binary)."""
    tensor = torch.from_numpy(np.ascontiguousarray(mask))
    if tensor.shape == (size, size):
        return tensor.clone()
    resized = F.interpolate(tensor[None, None].to(torch.uint8), size=(size, size), mode="nearest-exact")
    return resized[0, 0].bool()


def center_crop_resize(image: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, size, size): the largest centred square, resized. Used for texture
    images, whose aspect ratio should not be distorted."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return resize_rgb(image[top : top + side, left : left + side], size)


def stack_or_empty(tensors: Iterable[torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """torch.stack that returns an empty (0, *shape) tensor for an empty list."""
    items = list(tensors)
    return torch.stack(items) if items else torch.zeros((0, *shape), dtype=dtype)
