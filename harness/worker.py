"""What runs on the Ray workers: the job actor and the synthetic-data preparation. Kept apart from
the driver so a worker imports only this (no pandas, no pyarrow): every job starts a fresh worker
process, and its start-up time is the harness's overhead.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from harness import lock
from harness.checkpoints import CheckpointPlan, job_kwargs
from harness.options import SyntheticData
from harness.progress import WorkerInfo
from memseg.config import JobConfig
from memseg.names import CATEGORIES
from memseg.result import JobResult, Progress

SYNTHETIC_FN = "memseg.data.synthetic:ensure_synthetic"


@dataclass(frozen=True)
class JobFailure:
    """What an actor returns when the job raised: the sweep records it and goes on."""

    error: str
    traceback: str


def resolve_callable(path: str) -> Callable[..., Any]:
    """The function at "pkg.module:function" or "pkg.module.function"."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path like 'memseg.job.run' or 'pkg.module:function'")
    module = importlib.import_module(module_name)
    try:
        fn: Callable[..., Any] = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r} (from {path!r})") from None
    return fn


def short_error(err: BaseException, limit: int = 500) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def prepare_synthetic(data: SyntheticData) -> Path:
    """Generate the synthetic data set at `data.root` unless it is already there. Safe to call
    from several processes at once on one node."""
    root = Path(data.root)
    ensure = resolve_callable(SYNTHETIC_FN)
    with lock.taking_turns(root.parent / f".{root.name}.lock"):
        return Path(ensure(root, data.image_size, data.seed, data.categories or CATEGORIES))


@ray.remote(max_restarts=0, max_task_retries=0, max_concurrency=2)
class JobActor:
    """Runs one job. Threaded (max_concurrency=2) so that `latest` answers while `run` works."""

    def __init__(self, num_threads: int) -> None:  # cheap: no torch here, the job imports it
        self._num_threads = num_threads
        self._latest: Progress | None = None
        self._checkpoint: tuple[int, bytes] | None = None  # the newest, until the driver fetches it

    def info(self) -> WorkerInfo:
        return WorkerInfo(os.getpid(), socket.gethostname(), ray.get_runtime_context().get_node_id())

    def latest(self) -> Progress | None:
        return self._latest

    def _report(self, progress: Progress) -> None:
        self._latest = progress  # one attribute store: atomic, read by `latest` on the other thread

    def _save(self, checkpoint: Any) -> None:
        """The job's on_checkpoint: serialise here (in the job's thread, so the job pays for it) and
        keep only the newest until the driver takes it."""
        self._checkpoint = (checkpoint.step, checkpoint.to_bytes())

    def checkpoint_after(self, step: int) -> tuple[int, bytes] | None:
        """The newest checkpoint if it is past `step` (what the driver has), else None."""
        held = self._checkpoint
        return held if held is not None and held[0] > step else None

    def run(
        self, job_fn: str, config: JobConfig, synthetic: SyntheticData | None, plan: CheckpointPlan | None = None
    ) -> JobResult | JobFailure:
        try:
            fn = resolve_callable(job_fn)
            if synthetic is not None:
                prepare_synthetic(synthetic)  # a node the autoscaler added after the preflight
            if "torch" in sys.modules:  # the job's module imported torch: give it our CPU share
                sys.modules["torch"].set_num_threads(self._num_threads)
            result = fn(config, self._report, **job_kwargs(fn, plan, self._save))
            if not isinstance(result, JobResult):
                raise TypeError(f"{job_fn} returned {type(result).__name__}, expected memseg.result.JobResult")
            return result
        except Exception as err:  # the job's own failure: recorded as failed, never retried
            return JobFailure(error=short_error(err), traceback=_traceback_summary(err))


def _traceback_summary(err: BaseException, frames: int = 6) -> str:
    """The last frames and the error: enough to find the line, small enough for a table cell."""
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    head, body, tail = lines[:1], lines[1:-1], lines[-1:]
    return "".join(head + body[-frames:] + tail)[-4000:]
