"""A validation curve that never sees the test set: a few normal TRAINING images, held
out of the memory bank and of training, given simulated anomalies once with a fixed seed, and
scored every N steps (image AUROC, pixel AUROC, loss).

It only watches: nothing here changes the weights, the BatchNorm statistics or any random stream
of training, and no checkpoint is ever chosen by it (the reported model is the final one). Its
numbers are on simulated anomalies of training-distribution images, never a test score.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from memseg.loss import LossSettings
from memseg.metrics import image_auroc, image_scores, pixel_auroc
from memseg.model import MemSeg
from memseg.simulate import AnomalySimulator

# What every view calls these numbers (memseg.curves names the series).
RULE = (
    "the last {count} normal training images in sorted file order (after the memory-bank images), "
    "removed from training; simulated anomalies drawn once with seed {seed}"
)
SEED_OFFSET = 3  # the held-out set's simulation seed is the job's seed + 3 (training uses +1, the simulation timing +2)


def hold_out_last(
    train_images: torch.Tensor, count: int, *, minimum: int, what: str, field: str, why: str = ""
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images left for training, held-out images): the LAST `count` of the training images in sorted
    file order, so the memory bank (the first images) and the held-out ones never overlap and the same
    images are held out for every seed. The one rule of the validation curve's images and of the
    calibration images (memseg.calibration); `what` and `field` name them in the errors."""
    if count < minimum:
        raise ValueError(f"the {what} needs at least {minimum} image(s){why}, got {count}")
    if len(train_images) <= count:
        raise ValueError(
            f"holding out {count} {what} images leaves no training image ({len(train_images)} after the memory bank); "
            f"lower {field} or add images"
        )
    return train_images[:-count], train_images[-count:]


def split_validation(train_images: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation curve's held-out images (`hold_out_last`): at least 2, one normal and one with an anomaly."""
    return hold_out_last(
        train_images, count, minimum=2, what="validation set", field="val_images", why=" (one normal, one with an anomaly)"
    )


@dataclass(frozen=True)
class ValidationSet:
    """The held-out images with their simulated anomalies, on the training device; the same
    tensors at every evaluation."""

    inputs: torch.Tensor  # (K, 3, S, S) float in [0, 1]
    masks: torch.Tensor  # (K, 1, S, S) 0/1
    labels: torch.Tensor  # (K,) 1 where the mask marks any pixel
    rule: str  # how the images were chosen, as recorded with the result


def make_validation_set(images: torch.Tensor, simulator: AnomalySimulator, seed: int, device: torch.device) -> ValidationSet:
    """Simulate anomalies on the held-out uint8 images once, with a generator of its own (seeded
    `seed`), so the training streams are untouched and every evaluation sees the same set."""
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        inputs, masks = simulator(images.to(device).float().div_(255.0), generator)
    labels = (masks.flatten(1).amax(dim=1) > 0).long()
    return ValidationSet(inputs, masks, labels, RULE.format(count=len(images), seed=seed))


@dataclass(frozen=True)
class ValidationPoint:
    """One evaluation of the held-out set: its metrics (NaN when a metric is undefined, e.g. every
    simulated mask came out empty) and how long it took."""

    image_auroc: float
    pixel_auroc: float
    loss: float
    seconds: float


@torch.no_grad()
def evaluate(model: MemSeg, held_out: ValidationSet, loss: LossSettings, top_k: int) -> ValidationPoint:
    """Score the held-out set in eval mode (BatchNorms use their running statistics, which this
    forward does not update), then put the model back in train mode. One host sync."""
    start = time.perf_counter()
    model.eval()
    try:
        logits = model(held_out.inputs).float()
    finally:
        model.train()
    maps = torch.softmax(logits, dim=1)[:, 1]
    total, _parts = loss(logits, held_out.masks)
    maps_cpu, masks_cpu, labels = maps.cpu(), held_out.masks[:, 0].cpu(), held_out.labels.cpu()
    two_classes = 0 < int(labels.sum()) < len(labels)
    return ValidationPoint(
        image_auroc=image_auroc(image_scores(maps_cpu, top_k=top_k), labels) if two_classes else math.nan,
        pixel_auroc=pixel_auroc(maps_cpu, masks_cpu) if two_classes else math.nan,
        loss=float(total),
        seconds=time.perf_counter() - start,
    )
