"""Batched 2D Perlin noise in torch, with a different lattice resolution per sample.

Shared by the anomaly masks (simulate.py) and the procedural texture bank (procedural.py). It
follows the numpy `rand_perlin_2d_np` that DRAEM and MemSeg use (quintic fade, unit gradients at
uniformly random angles, result scaled by sqrt(2)), but draws every sample of a batch at once.
"""

from __future__ import annotations

import math

import torch


def _fade(t: torch.Tensor) -> torch.Tensor:
    """Quintic fade 6t^5 - 15t^4 + 10t^3 (six kernels, in place where possible)."""
    return t.pow(3).mul_(t.mul(6.0).sub_(15.0).mul_(t).add_(10.0))


def perlin_2d(
    size: int,
    res_y: torch.Tensor,
    res_x: torch.Tensor,
    max_res: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Perlin noise, (B, size, size) float32, values in about [-1, 1].

    res_y, res_x: (B,) integer lattice cells along each axis per sample, each in [1, max_res].
    `max_res` is a Python int so the gradient lattice has a static shape (no host sync on the
    resolutions). Random draws come from `generator` on its own device; the result is on the
    device of `res_y`.

    The four lattice corners of every pixel are looked up with one gather of gradient angles and
    both axes share every step, so one call is ~30 small kernels whatever the batch: the
    simulator runs this every training step, where kernel launches, not FLOPs, set the time.
    """
    device = res_y.device
    batch = res_y.shape[0]
    gen_device = generator.device if generator is not None else device
    stride = max_res + 1
    # Angles of unit gradients at the (max_res + 1)^2 lattice points of every sample.
    angles = torch.empty(batch, stride * stride, device=gen_device)
    angles = angles.uniform_(0.0, 2.0 * math.pi, generator=generator).to(device)

    pixel = torch.arange(size, device=device, dtype=torch.float32)
    res = torch.stack((res_y, res_x), dim=1).to(torch.float32)  # (B, 2): axis y, axis x
    pos = pixel * res[:, :, None] / size  # (B, 2, S) in lattice units
    cell = pos.floor()
    frac = pos - cell
    fade = _fade(frac)
    offset = pixel[:2]  # (0, 1): the lower and the upper lattice corner along an axis
    # Lattice coordinates of both corners along each axis, (B, 2 axes, 2 corners, S).
    corner = (cell[:, :, None, :] + offset[:, None]).long()
    row = corner[:, 0] * stride
    index = row[:, :, None, :, None] + corner[:, 1][:, None, :, None, :]  # (B, dy, dx, S, S)
    angle = torch.gather(angles, 1, index.reshape(batch, -1)).view(index.shape)
    # Offsets to the corners, scaled by sqrt(2) here (cheap) rather than on the result.
    to_corner = (frac[:, :, None, :] - offset[:, None]).mul_(math.sqrt(2.0))  # (B, 2 axes, 2, S)
    dot = torch.addcmul(
        torch.cos(angle).mul_(to_corner[:, 0][:, :, None, :, None]),
        torch.sin(angle),
        to_corner[:, 1][:, None, :, None, :],
    )
    along_y = torch.lerp(dot[:, 0], dot[:, 1], fade[:, 0][:, None, :, None])  # (B, dx, S, S)
    return torch.lerp(along_y[:, 0], along_y[:, 1], fade[:, 1][:, None, :])


def fbm_2d(
    size: int,
    base_res: torch.Tensor,
    octaves: int,
    generator: torch.Generator | None = None,
    persistence: float = 0.5,
) -> torch.Tensor:
    """Fractal Brownian motion: `octaves` Perlin layers, resolution doubling and amplitude
    halving each time, (B, size, size) in about [-1, 1]. base_res: (B,) integers >= 1."""
    total = torch.zeros(base_res.shape[0], size, size, device=base_res.device)
    # One host read per call: the texture generator calls this once per job, never in training.
    max_base_res = int(base_res.max())
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        res = base_res * (2**octave)
        max_res = int(2**octave) * max_base_res
        total = total + amplitude * perlin_2d(size, res, res, max_res, generator)
        norm += amplitude
        amplitude *= persistence
    return total / norm
