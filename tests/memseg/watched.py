"""Watching a job's test set: its test images, labels and masks wrapped in a tensor subclass that
notes the progress event count at every operation on them (the numbers are unchanged), so a test can
prove that nothing reads the test set before training, or calibration, has ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from memseg import job as job_module
from memseg.config import JobConfig
from memseg.result import JobResult, Progress


class Watched(torch.Tensor):
    """A tensor that notes, in `seen_at`, the progress event count at each operation on it."""

    seen_at: ClassVar[list[int]] = []
    events: ClassVar[list[Progress]] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.seen_at.append(len(cls.events))
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


@dataclass(frozen=True)
class WatchedRun:
    """A job whose test tensors were Watched: its result, its progress events, and the event count
    at each operation on a test tensor."""

    result: JobResult
    events: list[Progress]
    seen_at: list[int]


def watched_run(config: JobConfig) -> WatchedRun:
    """Run the job of `config` with its test tensors Watched."""
    real_load = job_module.load_data

    def watched_load(config: JobConfig):
        data = real_load(config)
        for name in ("test_images", "test_labels", "test_masks"):
            object.__setattr__(data, name, getattr(data, name).as_subclass(Watched))
        return data

    Watched.seen_at = []
    events: list[Progress] = []
    Watched.events = events
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job_module, "load_data", watched_load)
        result = job_module.run(config, on_progress=events.append)
    return WatchedRun(result, events, list(Watched.seen_at))
