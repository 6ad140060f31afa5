"""Published MemSeg numbers shown beside ours, in percent: the paper's MVTec AD averages (arXiv 2205.00908) and
TooTouch/MemSeg's per-category results (its README), each labelled with where it comes from.

Only what was published: the paper's per-category tables could not be retrieved, so the paper
contributes its MVTec AD averages alone. Never add per-category paper values here by guesswork.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    label: str
    note: str
    image_auroc: dict[str, float]  # category (or "average") -> percent
    pixel_auroc: dict[str, float]


PAPER = Reference(
    label="paper",
    note="MemSeg paper (arXiv 2205.00908): MVTec AD averages only; per-category values not available.",
    image_auroc={"average": 99.56},
    pixel_auroc={"average": 98.84},
)

# TooTouch/MemSeg README (ResNet18, 256 px).
_TOOTOUCH = {
    "bottle": (100.00, 98.79),
    "cable": (92.50, 82.30),
    "capsule": (95.41, 98.43),
    "carpet": (99.12, 97.54),
    "grid": (99.83, 98.37),
    "hazelnut": (100.00, 97.78),
    "leather": (100.00, 98.83),
    "metal_nut": (99.46, 88.48),
    "pill": (97.05, 98.29),
    "screw": (94.86, 95.08),
    "tile": (99.86, 99.38),
    "toothbrush": (100.00, 99.28),
    "transistor": (96.50, 76.29),
    "wood": (100.00, 97.54),
    "zipper": (99.95, 97.94),
    "average": (98.30, 94.96),
}
TOOTOUCH = Reference(
    label="TooTouch†",
    note=(
        "† TooTouch/MemSeg re-implementation (ResNet18, 256 px): best checkpoint picked on the test set, "
        "so optimistic (its final checkpoints average 97.43 image / 93.81 pixel AUROC); not comparable to a final model."
    ),
    image_auroc={k: v[0] for k, v in _TOOTOUCH.items()},
    pixel_auroc={k: v[1] for k, v in _TOOTOUCH.items()},
)
