"""Job functions for `harness tune` tests, imported by path inside Ray's trial workers
("tests.harness.tune_fakes:curve_job"): one that reports a made-up validation curve at once, and
one that trains for real with every test file's decoding made to fail."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace
from typing import Any

from memseg.config import JobConfig


def quality(lr: float) -> float:
    """How good a learning rate is in `curve_job`'s made-up world: 1 at 1e-2, 0 at 1e-5."""
    return min(1.0, max(0.0, (math.log10(lr) + 5) / 3))


def curve_job(config: JobConfig, on_progress: Any = None, *, on_validation: Any) -> None:
    """A validation curve without training: it rises with the step as far as the lr is good, and a
    worse lr reports more slowly, so the good trials reach each of ASHA's rungs first."""
    q = quality(config.lr)
    for step in range(config.val_every, config.steps + 1, config.val_every):
        time.sleep(0.05 + 1.2 * (1 - q))
        value = 0.5 + 0.45 * q * step / config.steps
        on_validation(step, SimpleNamespace(image_auroc=value, pixel_auroc=value, loss=1 - value, seconds=0.0))


def validate_never_opening_tests(config: JobConfig, on_progress: Any = None, *, on_validation: Any) -> Any:
    """memseg.job.validate, in a worker where decoding any test file raises: a trial that read the
    test set would fail, and its row would say so."""
    from memseg import job
    from memseg.data import files

    def refuse(item: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a search trial opened the test file {item}")

    files._load_test_item = refuse
    return job.validate(config, on_progress, on_validation=on_validation)
