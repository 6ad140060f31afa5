"""What the driver tells its caller: while a sweep runs, one event per step of a job's life; at
its end, the SweepOutcome. No Ray and no rendering here: the driver emits, the CLI's live view
(harness.live) renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memseg.result import Progress

if TYPE_CHECKING:  # a type of these events only: the workers and the store import this module, never the cluster
    from harness.cluster import JobRequest


@dataclass(frozen=True)
class WorkerInfo:
    """Where a job's actor runs: its process id, host name and Ray node id."""

    pid: int
    hostname: str
    node_id: str


@dataclass(frozen=True)
class Note:
    """A step of the preflight or of the cluster's state worth telling the user."""

    message: str


@dataclass(frozen=True)
class SweepStarted:
    sweep: str
    total: int
    to_run: tuple[str, ...]
    done_before: tuple[str, ...]
    failed_before: tuple[str, ...]  # failed earlier and not re-run (see --retry-failed)
    request: JobRequest | None  # None when nothing had to run
    capacity: int  # jobs that can run at once now (grows with an autoscaler)


@dataclass(frozen=True)
class JobLaunched:
    """An actor was asked for; it may wait for resources before it starts."""

    job_id: str
    attempt: int


@dataclass(frozen=True)
class JobStarted:
    """The job's actor is up: where it runs is known."""

    job_id: str
    attempt: int
    worker: WorkerInfo

    @property
    def pid(self) -> int:
        return self.worker.pid

    @property
    def hostname(self) -> str:
        return self.worker.hostname


@dataclass(frozen=True)
class JobProgressed:
    job_id: str
    progress: Progress


@dataclass(frozen=True)
class JobRetrying:
    """The job's worker died; it starts again on a fresh actor."""

    job_id: str
    next_attempt: int
    reason: str


@dataclass(frozen=True)
class JobFinished:
    job_id: str
    status: str  # store.STATUS_OK | store.STATUS_FAILED
    error: str
    attempts: int
    wall_s: float


@dataclass(frozen=True)
class JobResumed:
    """The job was launched from its checkpoint: steps 1..`step` are not run again."""

    job_id: str
    attempt: int
    step: int


@dataclass(frozen=True)
class CheckpointSaved:
    """The driver wrote a running job's checkpoint (`size` bytes, in `write_s` seconds)."""

    job_id: str
    step: int
    size: int
    write_s: float


Event = Note | SweepStarted | JobLaunched | JobStarted | JobProgressed | JobRetrying | JobFinished | JobResumed | CheckpointSaved


@dataclass(frozen=True)
class SweepOutcome:
    """What `harness.driver.run_sweep` returns: the jobs run, done, failed and retried."""

    sweep: str
    results_dir: str
    total: int
    ran: tuple[str, ...]
    succeeded: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (job_id, error) of jobs that failed in this run
    done_before: tuple[str, ...]
    failed_before: tuple[str, ...]  # failed in an earlier run and not re-run
    retries: int
    max_running: int  # most jobs seen running at once
    wall_s: float
    request: JobRequest | None  # None when nothing had to run
    resumed: tuple[tuple[str, int], ...] = ()  # (job_id, step) of launches that started from a checkpoint
    checkpoints_written: int = 0
    stale: tuple[tuple[str, int], ...] = ()  # (job_id, revision) of results of another revision, re-run

    @property
    def ok(self) -> bool:
        return not self.failed and not self.failed_before
