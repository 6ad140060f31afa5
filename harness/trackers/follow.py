"""`harness run --log-to TRACKER`: each job goes to the tracker as soon as its row is committed,
from the driver process only (the workers never see a tracker or its credentials). It listens to
the driver's events, so the driver knows nothing of trackers.

A job the tracker refuses (a server down, a full disk) is named in a warning and the sweep goes on:
its result is committed already, and `harness export --to TRACKER SWEEP` sends it later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import store
from harness.curves_store import load_curves
from harness.progress import Event, JobFinished
from harness.trackers import Exported, check_installed, default_dest, export_job, pictures_of


@dataclass
class Follower:
    """Sends each job that finishes ok to `tracker` at `dest` (default: under the sweep folder).
    `warn` gets one line per job that could not be sent. Built before the sweep starts, so a
    tracker that is not installed is refused (TrackerMissing, exit 2) before any job runs."""

    tracker: str
    results_dir: Path
    sweep: str
    warn: Callable[[str], None]
    dest: str = ""
    sent: list[Exported] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_installed(self.tracker)
        self.dest = self.dest or default_dest(self.tracker, self.results_dir, self.sweep)

    def on_event(self, event: Event) -> None:
        if not isinstance(event, JobFinished) or event.status != store.STATUS_OK:
            return
        try:
            self.sent.append(self.send(event.job_id))
        except Exception as err:  # a tracker problem never stops a sweep whose results are safe on disk
            self.warn(
                f"--log-to {self.tracker}: job {event.job_id} was not sent ({type(err).__name__}: {err}); "
                f"`harness export --to {self.tracker} {self.sweep}` sends it later"
            )

    def send(self, job_id: str) -> Exported:
        """Send one committed job: its stored row, curves and pictures, as `harness export` would.
        Reads that job's files only, so following a sweep costs one read per job."""
        row = store.load_job(self.results_dir, self.sweep, job_id)
        curves = load_curves(self.results_dir, self.sweep, job_id)
        return export_job(self.tracker, row, curves, pictures_of(self.results_dir, self.sweep, job_id), self.dest)
