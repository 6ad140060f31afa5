"""What the driver tells its caller while a sweep runs: one event per step of a job's life. No Ray
and no rendering here: the driver emits, the CLI's live view (harness.live) renders.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.cluster import JobRequest
from memseg.config import Progress


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


Event = Note | SweepStarted | JobLaunched | JobStarted | JobProgressed | JobRetrying | JobFinished
