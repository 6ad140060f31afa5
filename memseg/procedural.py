"""Procedural anomaly-source textures, for when no DTD folder is available (it cannot be
downloaded everywhere): a deterministic bank of varied colour textures built in torch.

Five families, in equal shares: fBm colour noise, (noise-warped) stripes, rotated checkers,
blotches (thresholded fBm in two or three colours) and marble veins. Colours, scales, angles and
frequencies are random per texture; the same (count, size, seed) gives the same bank anywhere.
"""

from __future__ import annotations

import math

import torch

from memseg.perlin import fbm_2d

TEXTURE_FAMILIES: tuple[str, ...] = ("fbm", "stripes", "checker", "blotches", "marble")


def _coords(count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    axis = torch.linspace(0.0, 1.0, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return y.expand(count, size, size), x.expand(count, size, size)


def _colours(count: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """(count, n, 3, 1, 1) random RGB colours in [0, 1]."""
    return torch.rand(count, n, 3, 1, 1, generator=generator)


def _mix(weight: torch.Tensor, colour_a: torch.Tensor, colour_b: torch.Tensor) -> torch.Tensor:
    """Blend two (count, 3, 1, 1) colours by a (count, S, S) weight in [0, 1] -> (count, 3, S, S)."""
    return colour_a + (colour_b - colour_a) * weight[:, None]


def _unit(noise: torch.Tensor) -> torch.Tensor:
    """Rescale each map of (count, S, S) to [0, 1]."""
    low = noise.amin(dim=(1, 2), keepdim=True)
    high = noise.amax(dim=(1, 2), keepdim=True)
    return (noise - low) / (high - low).clamp_min(1e-6)


def _fbm(count: int, size: int, generator: torch.Generator, lo: int = 2, hi: int = 9, octaves: int = 4) -> torch.Tensor:
    base = torch.randint(lo, hi, (count,), generator=generator)
    octaves = max(1, min(octaves, int(math.log2(max(size // (2 * (hi - 1)), 1))) + 1))
    return fbm_2d(size, base, octaves, generator)


def _family(name: str, count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """`count` textures of one family, float (count, 3, S, S) in [0, 1]."""
    colours = _colours(count, 3, generator)
    y, x = _coords(count, size)
    angle = torch.rand(count, 1, 1, generator=generator) * math.pi
    along = x * torch.cos(angle) + y * torch.sin(angle)
    across = -x * torch.sin(angle) + y * torch.cos(angle)
    if name == "fbm":
        # Independent fBm per channel around a random base colour.
        channels = torch.stack([_unit(_fbm(count, size, generator)) for _ in range(3)], dim=1)
        return (0.5 * colours[:, 0] + 0.5 * channels).clamp(0.0, 1.0)
    if name == "stripes":
        frequency = 4.0 + 28.0 * torch.rand(count, 1, 1, generator=generator)
        warp = 0.3 * torch.rand(count, 1, 1, generator=generator) * _fbm(count, size, generator)
        wave = 0.5 + 0.5 * torch.sin(2 * math.pi * frequency * (along + warp))
        sharpness = 1.0 + 9.0 * torch.rand(count, 1, 1, generator=generator)
        return _mix(torch.sigmoid(sharpness * (wave - 0.5) * 4.0), colours[:, 0], colours[:, 1])
    if name == "checker":
        frequency = 2.0 + 14.0 * torch.rand(count, 1, 1, generator=generator)
        cells = torch.sin(math.pi * frequency * along) * torch.sin(math.pi * frequency * across)
        return _mix((cells > 0).to(torch.float32), colours[:, 0], colours[:, 1])
    if name == "blotches":
        noise = _unit(_fbm(count, size, generator, lo=1, hi=5))
        cut = 0.35 + 0.3 * torch.rand(count, 1, 1, generator=generator)
        two = _mix((noise > cut).to(torch.float32), colours[:, 0], colours[:, 1])
        speckle = _unit(_fbm(count, size, generator, lo=8, hi=17, octaves=2))
        return torch.where((speckle > 0.75)[:, None], colours[:, 2], two)
    if name == "marble":
        frequency = 2.0 + 8.0 * torch.rand(count, 1, 1, generator=generator)
        turbulence = 2.0 + 4.0 * torch.rand(count, 1, 1, generator=generator)
        veins = torch.abs(torch.sin(2 * math.pi * frequency * along + turbulence * _fbm(count, size, generator)))
        return _mix(veins**0.5, colours[:, 0], colours[:, 1])
    raise ValueError(f"unknown texture family {name!r}; valid: {', '.join(TEXTURE_FAMILIES)}")


def procedural_textures(count: int = 64, size: int = 256, seed: int = 0) -> torch.Tensor:
    """A bank of `count` textures, (count, 3, size, size) uint8 on the CPU (move it to the training
    device once). Families cycle fbm, stripes, checker, blotches, marble; a light grain is added
    so no texture is perfectly flat. Deterministic for (count, size, seed)."""
    if count < 1 or size < 8:
        raise ValueError(f"need count >= 1 and size >= 8, got count={count}, size={size}")
    generator = torch.Generator().manual_seed(seed)
    textures = torch.empty(count, 3, size, size)
    families = torch.arange(count) % len(TEXTURE_FAMILIES)
    for index, name in enumerate(TEXTURE_FAMILIES):
        members = (families == index).nonzero().flatten()
        if len(members):
            textures[members] = _family(name, len(members), size, generator)
    grain = 0.03 * torch.randn(count, 1, size, size, generator=generator)
    return ((textures + grain).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
