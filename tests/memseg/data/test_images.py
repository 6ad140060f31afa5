"""Decoding of every image mode to RGB uint8, mask binarisation and resizing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from memseg.data.images import UnsupportedPixels, is_stray, list_folder, read_mask, read_rgb, resize_mask, resize_rgb
from tests.memseg.data.conftest import write_png


def png16_rgb(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG (PIL cannot write one)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 256
    rgb = read_rgb(write_png(tmp_path / "g.png", gray.astype(np.uint8)))
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert (rgb[:, :, 0] == gray).all() and (rgb[:, :, 1] == gray).all() and (rgb[:, :, 2] == gray).all()


def test_rgba_drops_alpha_and_palette_expands(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((32, 32, 1), 7, np.uint8)], axis=2)
    assert (read_rgb(write_png(tmp_path / "a.png", rgba)) == rgb).all()
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    palette = read_rgb(tmp_path / "p.png")
    assert palette.shape == (32, 32, 3) and palette.dtype == np.uint8
    assert (palette == np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))).all()


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(4, axis=0)
    rgb = read_rgb(write_png(tmp_path / "g16.png", values))
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]


def test_16bit_rgb_is_read_as_8bit(tmp_path):
    rgb16 = np.zeros((4, 4, 3), dtype=np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 32896, 0
    rgb = read_rgb(png16_rgb(tmp_path / "c16.png", rgb16))
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 4, 3)
    assert rgb[0, 0].tolist() == [255, 128, 0]


def test_16bit_grey_and_colour_follow_one_rule_the_high_byte(tmp_path):
    """value >> 8 for both: the PNG decoder already keeps the high byte of 16-bit colour, so grey
    must too, or one camera's grey and colour frames of a scene would differ (1000 -> 3, not 4)."""
    values = np.array([[0, 255, 256, 1000, 30000, 65535]], dtype=np.uint16)
    grey = read_rgb(write_png(tmp_path / "g16.png", values))[0, :, 0]
    colour = read_rgb(png16_rgb(tmp_path / "c16.png", np.repeat(values[:, :, None], 3, axis=2)))[0, :, 0]
    assert grey.tolist() == colour.tolist() == [0, 0, 1, 3, 117, 255]
    eight = np.arange(256, dtype=np.uint16)[None]  # an 8-bit image stored in 16 bits comes back exactly
    assert read_rgb(write_png(tmp_path / "e16.png", eight * 257))[0, :, 0].tolist() == list(range(256))


def test_pixels_without_a_stated_8bit_reading_are_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(UnsupportedPixels, match="floating-point"):
        read_rgb(tmp_path / "f.tif")
    Image.fromarray(np.full((4, 4), 70000, np.int32), mode="I").save(tmp_path / "i.tif")
    with pytest.raises(UnsupportedPixels, match="32-bit integer pixels from 70000 to 70000"):
        read_rgb(tmp_path / "i.tif")


def test_mask_binarised_at_half_its_max(tmp_path):
    values = np.array([[0, 100, 101, 200]], dtype=np.uint8)  # max 200: > 100 is defective
    assert read_mask(write_png(tmp_path / "m.png", values)).tolist() == [[False, False, True, True]]
    assert not read_mask(write_png(tmp_path / "z.png", np.zeros((3, 3), np.uint8))).any()
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (0, 0, 255)  # a blue-on-black mask counts by its brightest channel
    assert read_mask(write_png(tmp_path / "c.png", colour)).tolist() == [[True, False], [False, False]]


def test_resize_mask_is_nearest_and_stays_binary():
    mask = np.zeros((100, 100), dtype=bool)
    mask[10:30, 50:90] = True
    small = resize_mask(mask, 50)
    assert small.dtype == torch.bool and small.shape == (50, 50)
    assert small.sum().item() == 20 * 10  # 20 x 40 px at half size, exactly
    assert small[5:15, 25:45].all()


def test_resize_rgb_shape_dtype_and_antialias():
    stripes = np.zeros((128, 128, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: without antialias a 4x shrink aliases to 0 or 255
    small = resize_rgb(stripes, 32)
    assert small.shape == (3, 32, 32) and small.dtype == torch.uint8
    assert 100 < small.float().mean() < 155 and small.float().std() < 10


def test_folder_listing_sorts_strays_and_others(tmp_path):
    for name in ("b.PNG", "a.png", "c.jpeg", ".DS_Store", "Thumbs.db", "desktop.ini", "._a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    listing = list_folder(tmp_path)
    assert [p.name for p in listing.images] == ["a.png", "b.PNG", "c.jpeg"]
    assert sorted(p.name for p in listing.strays) == sorted([".DS_Store", "Thumbs.db", "desktop.ini", "._a.png"])
    assert sorted(p.name for p in listing.others) == ["notes.txt", "sub"]
    assert is_stray(Path("x/.hidden")) and not is_stray(Path("x/image.png"))


def test_truncated_png_raises_on_read(tmp_path):
    path = write_png(tmp_path / "t.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(OSError):
        read_rgb(path)
