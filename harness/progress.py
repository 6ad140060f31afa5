"""What the driver tells its caller while a sweep runs (events), and the running tally a live
view is drawn from. No Ray and no rendering here: the driver emits, the CLI renders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from memseg.config import Progress


@dataclass(frozen=True)
class JobRequest:
    """The resources one job's actor holds."""

    num_cpus: float
    num_gpus: float

    def describe(self) -> str:
        return f"{_num(self.num_gpus)} GPU and {_num(self.num_cpus)} CPU per job"


def _num(x: float) -> str:
    return f"{x:g}"


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
    """The job's actor is up (its process id and node are known)."""

    job_id: str
    attempt: int
    pid: int
    hostname: str
    node_id: str


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
    status: str  # ok | failed
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


@dataclass
class RunningJob:
    job_id: str
    attempt: int
    started: bool = False
    hostname: str = ""
    progress: Progress | None = None
    since: float = field(default_factory=time.monotonic)


@dataclass
class LiveState:
    """The tally a live view shows: counts and one entry per running job. Fed with `apply`."""

    sweep: str = ""
    total: int = 0
    to_run: int = 0
    done_before: int = 0
    failed_before: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    running: dict[str, RunningJob] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    request: JobRequest | None = None
    capacity: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def pending(self) -> int:
        return self.to_run - self.finished - len(self.running)

    def apply(self, event: Event) -> None:
        if isinstance(event, SweepStarted):
            self.sweep, self.total, self.to_run = event.sweep, event.total, len(event.to_run)
            self.done_before, self.failed_before = len(event.done_before), len(event.failed_before)
            self.request, self.capacity = event.request, event.capacity
        elif isinstance(event, Note):
            self.notes.append(event.message)
        elif isinstance(event, JobLaunched):
            self.running[event.job_id] = RunningJob(event.job_id, event.attempt)
        elif isinstance(event, JobStarted):
            job = self.running.setdefault(event.job_id, RunningJob(event.job_id, event.attempt))
            job.started, job.hostname, job.since = True, event.hostname, time.monotonic()
        elif isinstance(event, JobProgressed):
            if event.job_id in self.running:
                self.running[event.job_id].progress = event.progress
        elif isinstance(event, JobRetrying):
            self.retried += 1
            self.running.pop(event.job_id, None)
        elif isinstance(event, JobFinished):
            self.running.pop(event.job_id, None)
            if event.status == "ok":
                self.succeeded += 1
            else:
                self.failed += 1
                self.errors[event.job_id] = event.error
