"""Send finished jobs to an experiment tracker: MLflow, Weights & Biases or TensorBoard, each an
optional extra that needs no account (`pip install 'memseg-bench[trackers]'`).

One run per job: the job's config as params, its training curves (train/* and validation/*) as
step metrics, the row's final metrics, and the job's pictures as artefacts. `export_job` sends one
job (the driver can call it after each committed job); `export_sweep` sends every finished job of a
stored sweep (`harness export`). Defaults that work with nothing configured, under the sweep folder:
an MLflow file store (mlruns/), W&B offline runs (wandb/), TensorBoard event files (tensorboard/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import paths, store
from harness.curves_store import load_curves
from harness.trackers import to_mlflow, to_tensorboard, to_wandb
from harness.trackers.job import TRACKERS, Exported, JobExport, TrackerMissing, job_export, pictures_of
from memseg.cli_errors import UserError
from memseg.curves import TrainingCurves

__all__ = [
    "TRACKERS",
    "Exported",
    "JobExport",
    "SweepExport",
    "TrackerMissing",
    "check_installed",
    "default_dest",
    "export_job",
    "export_sweep",
    "job_export",
    "pictures_of",
]

_MODULES = {"mlflow": to_mlflow, "wandb": to_wandb, "tensorboard": to_tensorboard}


@dataclass(frozen=True)
class SweepExport:
    """What `export_sweep` did: where the runs went, one per finished job, and the jobs left out."""

    tracker: str
    dest: str
    exported: tuple[Exported, ...]
    skipped: tuple[str, ...]  # failed jobs: no metrics to send
    notes: tuple[str, ...] = ()  # what the sweep's reader could not count (damaged jobs, stray files): not sent


def _module(tracker: str) -> Any:
    if tracker not in _MODULES:
        raise UserError(f"unknown tracker {tracker!r}: expected one of {', '.join(TRACKERS)}")
    return _MODULES[tracker]


def check_installed(tracker: str) -> None:
    """TrackerMissing (a UserError naming the pip extra) when `tracker`'s library is not installed;
    UserError for a tracker we do not know."""
    _module(tracker).check_installed()


def default_dest(tracker: str, results_dir: str | Path, sweep: str) -> str:
    """Where a tracker writes when not told: under the sweep folder, nothing to configure."""
    return str(_module(tracker).default_dest(paths.sweep_dir(results_dir, sweep)))


def export_job(
    tracker: str, row: Mapping[str, Any], curves: TrainingCurves | None, pictures: tuple[Path, ...], dest: str | Path
) -> Exported:
    """Send one finished job (its stored row, curves and picture files) to `tracker` at `dest` (an
    MLflow tracking URI or folder, the W&B folder, the TensorBoard log folder). A job sent again
    replaces its earlier run where the tracker allows it (MLflow, TensorBoard)."""
    module = _module(tracker)
    module.check_installed()
    job = job_export(row, curves, pictures)
    return Exported(tracker, job.job_id, module.export(job, dest))


def export_sweep(results_dir: str | Path, sweep: str, to: str, dest: str | Path | None = None) -> SweepExport:
    """Send every finished job of a stored sweep to tracker `to`; `dest` as in `export_job`
    (default: `default_dest`). A sweep that does not exist or has no finished job: UserError."""
    module = _module(to)
    if sweep not in store.list_sweeps(results_dir):
        known = ", ".join(store.list_sweeps(results_dir)) or "none"
        raise UserError(f"no sweep {sweep!r} under {results_dir} (sweeps there: {known})")
    read = store.read_sweep(results_dir, sweep)
    rows = read.rows
    ok = store.ok_rows(rows)
    if ok.empty:
        raise UserError(f"sweep {sweep!r} under {results_dir} has no finished job to export ({len(rows)} failed)")
    module.check_installed()
    target = str(dest) if dest is not None else default_dest(to, results_dir, sweep)
    exported = tuple(
        export_job(
            to, row, load_curves(results_dir, sweep, row["job_id"]), pictures_of(results_dir, sweep, row["job_id"]), target
        )
        for row in ({str(k): v for k, v in record.items()} for record in ok.to_dict("records"))
    )
    skipped = tuple(str(j) for j in store.failed_rows(rows)["job_id"])
    return SweepExport(to, target, exported, skipped, tuple(read.notes()))
