"""Decoding and resizing of image and mask files, shared by every reader.

One place decides which files are images, which stray files are ignored, how odd modes
(grayscale, RGBA, palette, 16-bit: SIXTEEN_BIT_RULE) become RGB uint8, and how masks are resized (nearest, then
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


# 16-bit images (industrial cameras write them) become 8 bits by one rule, for grey and colour
# alike: the high byte, value >> 8. It is what the PNG decoder does to 16-bit colour images (their
# low byte is gone before we see them), so a grey and a colour picture of one camera get the same
# values; an 8-bit image stored as 16 bits (v * 257) comes back exactly; nothing saturates. Pixel
# values are never guessed: integers beyond 16 bits and floating-point pixels, whose scale the file
# does not say, are refused (UnsupportedPixels) naming the file's mode.
SIXTEEN_BIT_RULE = "16-bit pixels become 8-bit by value >> 8 (the high byte), grey and colour alike"
_GREY_16 = ("I;16", "I;16B", "I;16L", "I;16N")


class UnsupportedPixels(ValueError):
    """An image whose pixel values have no 8-bit reading we can state (one of DECODE_ERRORS)."""


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a PIL image: 16-bit pixels by SIXTEEN_BIT_RULE, alpha dropped,
    palettes expanded. UnsupportedPixels for 32-bit integers beyond 16-bit values and for
    floating-point pixels: their scale is not in the file, and a guess would score silently."""
    check_pixels(img)
    if img.mode in _GREY_16 or img.mode == "I":
        grey = np.asarray(img).astype(np.int64)
        return np.repeat((grey >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)


def check_pixels(img: Image.Image) -> None:
    """UnsupportedPixels when `img`'s pixel values have no stated 8-bit reading (see to_rgb_array)."""
    if img.mode == "F":
        raise UnsupportedPixels(
            "floating-point pixels: the file does not say their scale (0..1? 0..255?); convert it to an 8- or 16-bit image"
        )
    if img.mode == "I":
        low, high = img.getextrema()
        if low < 0 or high > 65535:  # type: ignore[operator]
            raise UnsupportedPixels(
                f"32-bit integer pixels from {low} to {high}: only 8- and 16-bit images are read "
                f"({SIXTEEN_BIT_RULE}); convert it to 8 or 16 bits"
            )


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


def probe(path: Path, pixels: bool = False) -> tuple[int, int]:
    """Fully decode `path` and return its (width, height): the check that finds truncated files;
    with `pixels` (an image, not a mask), also that its pixels have an 8-bit reading (check_pixels)."""
    with Image.open(path) as img:
        img.load()
        if pixels:
            check_pixels(img)
        return img.size


def original_size(path: Path | str) -> tuple[int, int]:
    """(height, width) of an image from its header alone (no decoding)."""
    with Image.open(path) as img:
        width, height = img.size
    return height, width


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
