"""Batched 2D Perlin noise in torch, with a different lattice resolution per sample.

Shared by the anomaly masks (simulate.py) and the procedural texture bank (procedural.py). It
follows the numpy `rand_perlin_2d_np` that DRAEM and MemSeg use (quintic fade, unit gradients at
uniformly random angles, result scaled by sqrt(2)), but draws every sample of a batch at once.
"""

from __future__ import annotations

import math

import torch


def _fade(t: torch.Tensor) -> torch.Tensor:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


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
    """
    device = res_y.device
    batch = res_y.shape[0]
    gen_device = generator.device if generator is not None else device
    # Unit gradients at the (max_res + 1)^2 lattice points of every sample.
    angles = 2.0 * math.pi * torch.rand(batch, max_res + 1, max_res + 1, generator=generator, device=gen_device)
    angles = angles.to(device)
    gradients = torch.stack((torch.cos(angles), torch.sin(angles)), dim=-1).reshape(batch, -1, 2)

    pixel = torch.arange(size, device=device, dtype=torch.float32)
    pos_y = pixel[None, :] * res_y.to(torch.float32)[:, None] / size  # (B, S) in lattice units
    pos_x = pixel[None, :] * res_x.to(torch.float32)[:, None] / size
    cell_y, cell_x = pos_y.floor().long(), pos_x.floor().long()
    frac_y, frac_x = pos_y - cell_y, pos_x - cell_x

    stride = max_res + 1

    def corner(dy: int, dx: int) -> torch.Tensor:
        # Gradient at lattice corner (cell + (dy, dx)) dotted with the offset to that corner.
        index = (cell_y[:, :, None] + dy) * stride + (cell_x[:, None, :] + dx)  # (B, S, S)
        grad = torch.gather(gradients, 1, index.reshape(batch, -1, 1).expand(-1, -1, 2))
        grad = grad.reshape(batch, size, size, 2)
        return grad[..., 0] * (frac_y[:, :, None] - dy) + grad[..., 1] * (frac_x[:, None, :] - dx)

    t_y = _fade(frac_y)[:, :, None]
    t_x = _fade(frac_x)[:, None, :]
    top = torch.lerp(corner(0, 0), corner(1, 0), t_y)
    bottom = torch.lerp(corner(0, 1), corner(1, 1), t_y)
    return math.sqrt(2.0) * torch.lerp(top, bottom, t_x)


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

