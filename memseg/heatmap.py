"""Anomaly maps as pictures: a colour map, an overlay on the input image, PNG output.

Kept free of matplotlib so `python -m memseg predict` needs nothing beyond the core install.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

# Anchor colours of a perceptually ordered "inferno"-like ramp: black - purple - orange - yellow.
_RAMP = torch.tensor([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=torch.float32)


def colorize(anomaly: torch.Tensor) -> torch.Tensor:
    """(S, S) probabilities in [0, 1] -> (3, S, S) uint8 colours, by linear interpolation of the ramp."""
    position = anomaly.float().clamp(0, 1) * (len(_RAMP) - 1)
    low = position.floor().long().clamp(max=len(_RAMP) - 2)
    frac = (position - low)[..., None]
    rgb = _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac  # (S, S, 3)
    return rgb.round().to(torch.uint8).permute(2, 0, 1)


def overlay(image: torch.Tensor, anomaly: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """(3, S, S) uint8 image with the colourised anomaly map blended over it."""
    blended = (1 - alpha) * image.float() + alpha * colorize(anomaly).float()
    return blended.round().clamp(0, 255).to(torch.uint8)


def write_png(image: torch.Tensor, path: Path) -> None:
    """Write a (3, S, S) or (S, S) uint8 tensor as PNG, creating the parent folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.cpu().numpy()
    if array.ndim == 3:
        array = np.transpose(array, (1, 2, 0))
    Image.fromarray(array).save(path)
