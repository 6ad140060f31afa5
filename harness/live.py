"""The live view of a running sweep: an overall bar with ETA, the done / failed / running /
pending / retried counts, and one line per running job (phase, step, loss, the loss's trend
since the job started, time). Fed with the
driver's events (harness.progress); rich redraws it on its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table
from rich.text import Text

from harness.curves_view import sparkline
from harness.eta import EtaTracker, format_eta
from harness.progress import (
    CheckpointSaved,
    Event,
    JobFinished,
    JobLaunched,
    JobProgressed,
    JobResumed,
    JobRetrying,
    JobStarted,
    Note,
    SweepStarted,
)
from harness.store import STATUS_OK
from memseg.result import Progress

TREND_WIDTH = 16  # characters of a running job's loss trend (each one the mean of a stretch of its losses)


@dataclass
class RunningJob:
    job_id: str
    attempt: int
    started: bool = False
    hostname: str = ""
    progress: Progress | None = None
    since: float = field(default_factory=time.monotonic)
    losses: list[float] = field(default_factory=list)  # each training loss reported, for the trend


@dataclass
class LiveState:
    """The tally the live view shows: counts and one entry per running job. Fed with `apply`."""

    to_run: int = 0
    done_before: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    running: dict[str, RunningJob] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        """Jobs not started yet: never launched, or launched and waiting for resources."""
        launched = sum(j.started for j in self.running.values())
        return self.to_run - self.succeeded - self.failed - launched

    def apply(self, event: Event) -> None:
        if isinstance(event, SweepStarted):
            self.to_run, self.done_before = len(event.to_run), len(event.done_before)
        elif isinstance(event, JobLaunched):
            self.running[event.job_id] = RunningJob(event.job_id, event.attempt)
        elif isinstance(event, JobStarted):
            job = self.running.setdefault(event.job_id, RunningJob(event.job_id, event.attempt))
            job.started, job.hostname, job.since = True, event.hostname, time.monotonic()
        elif isinstance(event, JobProgressed) and event.job_id in self.running:
            job = self.running[event.job_id]
            job.progress = event.progress
            if event.progress.phase == "train" and event.progress.loss is not None:
                job.losses.append(event.progress.loss)
        elif isinstance(event, JobRetrying):
            self.retried += 1
            self.running.pop(event.job_id, None)
        elif isinstance(event, JobFinished):
            self.running.pop(event.job_id, None)
            self.succeeded += event.status == STATUS_OK
            self.failed += event.status != STATUS_OK


def running_view(state: LiveState) -> Group:
    """The live part of the run display: counts, and one line per running job."""
    running = sum(j.started for j in state.running.values())
    counts = Text.assemble(
        ("done ", "dim"), (str(state.succeeded + state.done_before), "green"),
        ("  failed ", "dim"), (str(state.failed), "red" if state.failed else "green"),
        ("  running ", "dim"), (str(running), "cyan"),
        ("  pending ", "dim"), (str(state.pending), "yellow"),
        ("  retried ", "dim"), (str(state.retried), "magenta" if state.retried else "dim"),
    )  # fmt: skip
    table = Table(box=None, pad_edge=False, show_header=bool(state.running))
    for name in ("job", "try", "node", "phase", "step", "loss", "trend", "time"):
        table.add_column(name, justify="left" if name in ("job", "node", "phase") else "right")
    for job in sorted(state.running.values(), key=lambda j: j.job_id):
        p = job.progress
        phase = p.phase if p else ("starting" if job.started else "waiting for resources")
        step = f"{p.step}/{p.total}" if p else ""
        loss = f"{p.loss:.4f}" if p and p.loss is not None else ""
        elapsed = f"{time.monotonic() - job.since:.0f} s" if job.started else ""
        trend = sparkline(job.losses, TREND_WIDTH)
        table.add_row(job.job_id, str(job.attempt), job.hostname, phase, step, loss, trend, elapsed)
    return Group(counts, table)


class LiveView:
    """The live display: an overall bar with ETA above the running view. Events arrive on the
    driver's thread; rich redraws on its own, so both sides take the lock. Finished jobs, retries
    and notes are logged above the display."""

    def __init__(self, console: Console, steps: Mapping[str, int] | None = None) -> None:
        self.console = console
        self.state = LiveState()
        self.eta = EtaTracker(steps=dict(steps or {}))  # from step rates, not finished jobs (harness.eta)
        self.lock = threading.Lock()
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.bar = Bar(*columns, TextColumn("eta {task.fields[eta]}"), console=console)
        self.task = self.bar.add_task("jobs", total=None, eta=format_eta(None))

    def __rich__(self) -> Group:
        with self.lock:
            self.bar.update(self.task, eta=format_eta(self.eta.estimate()))
            return Group(self.bar, running_view(self.state))

    def live(self) -> Live:
        return Live(self, console=self.console, refresh_per_second=4, transient=True)

    def on_event(self, event: Event) -> None:
        with self.lock:
            self.state.apply(event)
            self.eta.apply(event)
        if isinstance(event, SweepStarted):
            self.bar.update(self.task, total=len(event.to_run))
            self.console.log(
                f"{len(event.to_run)} to run, {len(event.done_before)} done before"
                + (f", {len(event.failed_before)} failed before (not re-run; --retry-failed)" if event.failed_before else "")
                + (f"; at most {event.capacity} at once" if event.to_run else "")
            )
        elif isinstance(event, Note):
            self.console.log(event.message)
        elif isinstance(event, JobRetrying):
            self.console.log(f"[magenta]retry[/] {event.job_id} (attempt {event.next_attempt}): {event.reason}")
        elif isinstance(event, JobResumed):
            self.console.log(
                f"[magenta]resume[/] {event.job_id} (attempt {event.attempt}) from its checkpoint at step {event.step}"
            )
        elif isinstance(event, CheckpointSaved):
            mb = event.size / 2**20
            self.console.log(f"checkpoint {event.job_id} step {event.step} ({mb:.1f} MB, written in {event.write_s:.2f} s)")
        elif isinstance(event, JobFinished):
            self.bar.advance(self.task)
            if event.status == STATUS_OK:
                self.console.log(f"[green]ok[/] {event.job_id} ({event.wall_s:.1f} s)")
            else:
                self.console.log(f"[red]failed[/] {event.job_id}: {event.error}", highlight=False)
