"""The sweep's time to finish, known from the first seconds: the measured step rates of running
jobs and the known steps of pending ones, spread over the jobs that can run at once. Until the
first rate is known the answer is None ("estimating"). Loading and evaluation time is left out
(training dominates a job), so early estimates lean short on tiny runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness.progress import Event, JobFinished, JobProgressed, JobRetrying, SweepStarted

TRAIN = "train"
_AFTER_TRAIN = ("calibrate", "eval", "private")  # phases that come after the last training step


@dataclass(frozen=True)
class JobRemaining:
    """A running job: training steps still to go and its measured rate (None: not known yet)."""

    steps_left: int
    rate: float | None


def estimate_eta(
    running: Sequence[JobRemaining], pending_steps: Sequence[int], slots: int, rates: Sequence[float] = ()
) -> float | None:
    """Seconds until every job is done, or None while no rate is known. A job without a rate of
    its own, and every pending job, runs at the median of the known rates (`rates`: those of
    finished jobs, plus the running ones'). The answer is the longest single job or the total
    work over the `slots` that run at once, whichever is longer."""
    known = [r for r in [*(j.rate for j in running), *rates] if r is not None and r > 0]
    if not known:
        return None
    typical = statistics.median(known)
    running_s = [j.steps_left / (j.rate if j.rate else typical) for j in running]
    pending_s = [steps / typical for steps in pending_steps]
    longest = max([*running_s, *pending_s], default=0.0)
    return max(longest, (sum(running_s) + sum(pending_s)) / max(1, slots))


@dataclass
class _Job:
    anchor: float  # when its latest step-0 phase (load, memory) began: training starts after it
    phase: str = ""
    step: int = 0
    total: int = 0
    rate: float | None = None


@dataclass
class EtaTracker:
    """Feeds `estimate_eta` from the driver's events. `steps` gives each job's training steps
    (the plan knows them); a job missing from it counts with the steps others reported."""

    steps: Mapping[str, int] = field(default_factory=dict)
    to_run: tuple[str, ...] = ()
    slots: int = 1
    finished: set[str] = field(default_factory=set)
    finished_rates: list[float] = field(default_factory=list)
    jobs: dict[str, _Job] = field(default_factory=dict)

    def apply(self, event: Event, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if isinstance(event, SweepStarted):
            self.to_run, self.slots = event.to_run, max(1, event.capacity)
        elif isinstance(event, JobProgressed):
            job = self.jobs.setdefault(event.job_id, _Job(anchor=now))
            p = event.progress
            job.phase, job.step, job.total = p.phase, p.step, p.total
            if p.phase != TRAIN and p.phase not in _AFTER_TRAIN:
                job.anchor = now
            elif p.phase == TRAIN and now > job.anchor and p.step > 0:
                job.rate = p.step / (now - job.anchor)
        elif isinstance(event, JobRetrying):
            self.jobs.pop(event.job_id, None)
        elif isinstance(event, JobFinished):
            ended = self.jobs.pop(event.job_id, None)
            self.finished.add(event.job_id)
            if ended is not None and ended.rate:
                self.finished_rates.append(ended.rate)

    def _steps_of(self, job_id: str) -> int:
        if job_id in self.steps:
            return int(self.steps[job_id])
        totals = [j.total for j in self.jobs.values() if j.phase == TRAIN]
        return max(totals, default=0)

    def estimate(self) -> float | None:
        running = []
        for job_id, job in self.jobs.items():
            if job.phase == TRAIN:
                left = job.total - job.step
            else:
                left = 0 if job.phase in _AFTER_TRAIN else self._steps_of(job_id)
            running.append(JobRemaining(left, job.rate))
        pending = [self._steps_of(j) for j in self.to_run if j not in self.finished and j not in self.jobs]
        return estimate_eta(running, pending, self.slots, self.finished_rates)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
