"""What a run is given besides its sweep: plain values that the command line, a test or a benchmark
set alike (`RunOptions`), the generated data set its jobs read (`SyntheticData`), and the default
job function and data check.

A leaf of the harness: it imports neither Ray nor torch, so the plan and every command line read it
without starting anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_JOB_FN = "memseg.job.run"  # module:function or module.function; a test gives a fake
DEFAULT_DATA_CHECK = "memseg.data.loading:check"  # run on every node before any job (harness.preflight)


@dataclass(frozen=True)
class SyntheticData:
    """The generated data set the jobs read: made on each node that needs it, once, with the
    sweep's categories (a later sweep adds the ones it lacks)."""

    root: str
    image_size: int
    seed: int = 0
    categories: tuple[str, ...] = ()  # () = all 15


@dataclass(frozen=True)
class RunOptions:
    """How one run treats its sweep, beyond what the sweep is: where results go, which stored
    results count as done, the checkpoint interval, where weights go, the step mode, the GPU
    memory for packing and the data check. `name_digest` is the hash of the recipe overrides the
    command line gave (harness.sweep.flags_digest; the overrides themselves are in the sweep): it is
    added to a sweep name that was not given with --name (`name`), so the same flags resume the same
    folder."""

    results: Path = Path("results")
    force: bool = False  # re-run jobs that are done
    retry_failed: bool = False  # re-run jobs that failed
    accept_revisions: tuple[int, ...] = ()  # results of these revisions count as done too
    checkpoint_every: int | None = None  # steps between checkpoints; None: the profile's default
    artefacts_dir: str | None = None  # where jobs save their weights (None: not saved)
    step_mode: str | None = None  # eager | auto | graph | compile for every job (None: the sweep's)
    gpu_memory_gb: float | None = None  # each GPU's memory, for jobs_per_gpu auto
    data_check: str | None = DEFAULT_DATA_CHECK  # module:function run on every node; None: none
    name_digest: str = ""  # harness.sweep.flags_digest of the recipe flags ("" : none given)
    name: str | None = None  # --name: the results folder exactly as given (no hash of the flags)

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", Path(self.results))
        object.__setattr__(self, "accept_revisions", tuple(sorted(set(self.accept_revisions))))
        if self.checkpoint_every is not None and self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0 (0 = off), got {self.checkpoint_every}")
