"""The learning test's two smoke-profile jobs, computed beside the rest of the suite.

They are the suite's largest CPU cost (about 3 minutes each on one core) and its only long
computation that needs nothing from other tests. So the session starts them when collection
ends, one spawned process and one torch thread each, at the lowest CPU priority (SCHED_IDLE): the
other tests, most of whose time is Ray starting and fake jobs sleeping, keep the CPU whenever
they want it, and the jobs take what is idle. The learning test runs last and only reads the
results (tests/conftest.py). Nothing about the computations changes: same data, same config,
one thread, so the same numbers as one job run alone.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

LEARNING_CATEGORIES = ("bottle", "carpet")


def smoke_metrics(category: str, data_root: str) -> dict[str, float]:
    """One smoke-profile job with torch's intra-op threads fixed at 1, so that it is one fixed
    computation on a CPU: carpet's pixel AUROC on this proxy is bimodal under float rounding (seed 0:
    93.3 / 97.6 with the per-parameter AdamW at 1 / 2 threads, 94.1 / 77.8 with the fused one; seed
    3: 63.9 and 54.3; docs/faithfulness.md, "Carpet's bad mode"), so the thread count is part of
    what the learning test pins, as for the pinned losses. Runs in a worker process of its own."""
    import torch

    from memseg import job
    from memseg.config import JobConfig
    from memseg.profiles import profile

    torch.set_num_threads(1)
    config = JobConfig.from_dict(profile("smoke") | {"category": category, "data_root": data_root, "dataset": "synthetic"})
    return job.run(config).metrics


def _lowest_priority() -> None:
    """Worker initializer: run only on a CPU nothing else wants. Linux's SCHED_IDLE class, below
    nice 19. Nice 19 alone is not enough: Ray runs its workers (where the harness tests' jobs run)
    at nice 15, whose scheduler weight (36) is not far above nice 19's (15), and in a CI run with
    nice 19 the first-screen test's ETA came too late. Where SCHED_IDLE does not exist, nice 19."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)


@dataclass
class LearningRuns:
    """The jobs under way: one future per category, the pool and the data folder they read."""

    pool: ProcessPoolExecutor
    root: Path
    runs: dict[str, Future]

    def results(self) -> dict[str, dict[str, float]]:
        """Each category's metrics, waiting for the jobs that are still computing."""
        return {category: run.result() for category, run in self.runs.items()}

    def close(self) -> None:
        """Stop what is left (a run cut short by -x or Ctrl-C) and remove the data."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> LearningRuns:
    """Generate the synthetic data (the same as the test module's: both categories, 64 px, seed 0)
    and submit one job per category to a pool of low-priority spawned processes."""
    from memseg.data.synthetic import generate

    root = Path(tempfile.mkdtemp(prefix="memseg-learning-"))
    generate(root, categories=LEARNING_CATEGORIES, image_size=64, seed=0)
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold Ray's threads
    pool = ProcessPoolExecutor(max_workers=len(LEARNING_CATEGORIES), mp_context=context, initializer=_lowest_priority)
    return LearningRuns(pool, root, {c: pool.submit(smoke_metrics, c, str(root)) for c in LEARNING_CATEGORIES})
