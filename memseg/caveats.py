"""What a result can and cannot mean, said where the numbers are shown (docs/design.md, 'What bad input gets'):
real images with a random-init backbone run, but MemSeg is near chance without pretrained features."""

from __future__ import annotations

# Data set kinds we generate ourselves; every other kind (mvtec, folder, those added later) is real.
GENERATED_KINDS: tuple[str, ...] = ("synthetic",)

RANDOM_INIT_REAL_DATA = (
    "real images with a random-init backbone (--backbone-weights none): without pretrained features MemSeg "
    "is near chance on real images (measured: image AUROC 0.50-0.60, below a per-pixel z-score baseline at 0.78); "
    "use --backbone-weights imagenet or a ResNet18 state-dict file for meaningful numbers"
)


def is_real(dataset: str) -> bool:
    return dataset not in GENERATED_KINDS


def random_init_on_real_data(dataset: str, backbone_weights: str) -> bool:
    """True when the numbers of a job with these settings say little (see RANDOM_INIT_REAL_DATA)."""
    return is_real(dataset) and backbone_weights == "none"
