"""Thresholds chosen without the test set: the trained model scores defect-free images it never
trained on (MVTec AD 2's validation/ split, or the last K normal training images held out with
calibrate_images), and the image and pixel thresholds are the mean + 3 standard deviations of
those scores, MVTec AD 2's authors' rule for its SegF1. At those thresholds a test image is called
anomalous or not, and a pixel defective or not.
"""

from __future__ import annotations

import torch

from memseg.result import Thresholds
from memseg.validation import hold_out_last

SIGMAS = 3.0
RULE = "mean + 3 std (population)"
HELD_OUT = "the last {count} normal training images in sorted file order, removed from training"
VALIDATION = "the data set's validation/ split"


def split_calibration(train_images: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images left for training, calibration images): the LAST `count` training images in sorted
    file order, by the validation curve's rule (memseg.validation.hold_out_last)."""
    return hold_out_last(train_images, count, minimum=1, what="calibration", field="calibrate_images")


def mean_plus_sigmas(values: torch.Tensor, sigmas: float = SIGMAS) -> float:
    """mean + sigmas * std of all values, in float64; the std is the population one (divided by n,
    numpy's default), so one image still gives a threshold."""
    wide = values.detach().reshape(-1).double()
    if wide.numel() == 0:
        raise ValueError("no calibration scores: a threshold needs at least one defect-free image")
    return float(wide.mean() + sigmas * wide.std(correction=0))


def calibrate(maps: torch.Tensor, image_scores: torch.Tensor, source: str) -> Thresholds:
    """The thresholds of the calibration images' anomaly maps (N, H, W) and image scores (N,)."""
    if maps.shape[0] != image_scores.shape[0]:
        raise ValueError(f"calibration: {image_scores.shape[0]} image scores but {maps.shape[0]} maps")
    return Thresholds(
        image=mean_plus_sigmas(image_scores),
        pixel=mean_plus_sigmas(maps),
        rule=RULE,
        source=source,
        images=int(maps.shape[0]),
    )
