"""A stored 2-job sweep with training curves, pictures and rows, written the driver's way without training."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from harness import curves_store, store
from memseg.config import JobConfig
from memseg.curves import TrainingCurves
from memseg.profiles import profile
from tests.harness.test_report_html import fabricated_result, persist_like_the_driver

SWEEP = "curves-2"


def make_curves(seed: int, validation: bool = True) -> TrainingCurves:
    """A loss that falls, its parts, a cosine-ish lr and step times; validation every 20 steps."""
    steps = tuple(range(0, 101, 10))
    loss = tuple(1.0 / (1 + s / 20) + 0.01 * seed for s in steps)
    train = {
        "loss": loss,
        "loss_l1": tuple(0.6 * v for v in loss),
        "loss_focal": tuple(0.4 * v for v in loss),
        "lr": tuple(0.04 * (1 + math.cos(math.pi * s / 100)) / 2 for s in steps),
        "step_time_s": tuple(0.05 + 0.001 * k for k in range(len(steps))),
    }
    if not validation:
        return TrainingCurves(steps, train)
    val_steps = (20, 40, 60, 80, 100)
    val = {
        "image_auroc": tuple(0.6 + 0.07 * k for k in range(5)),
        "pixel_auroc": tuple(0.7 + 0.05 * k for k in range(5)),
        "loss": tuple(0.5 - 0.05 * k for k in range(5)),
    }
    return TrainingCurves(steps, train, val_steps, val)


def configs() -> list[JobConfig]:
    return [JobConfig.from_dict(profile("tiny") | {"category": "bottle", "dataset": "synthetic", "seed": s}) for s in (0, 1)]


def write_sweep(results: Path, sweep: str = SWEEP) -> list[str]:
    """Two finished jobs of one category with curves (validation too) and pictures; their job ids."""
    ids = []
    for index, config in enumerate(configs()):
        result = dataclasses.replace(fabricated_result(config, index), curves=make_curves(index))
        curves_store.persist(results, sweep, result.job_id, result.curves)
        persist_like_the_driver(results, sweep, result)
        ids.append(result.job_id)
    store.save_spec(results, sweep, "name: " + sweep + "\n")
    return ids
