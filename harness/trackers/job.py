"""What one tracker run holds (`JobExport`), built from a job's stored row, curves and pictures:
the one mapping from a result to params, step metrics and final metrics that every tracker uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import store
from harness.visuals_store import load_visuals
from memseg.cli_errors import UserError
from memseg.curves import TrainingCurves

TRACKERS = ("mlflow", "wandb", "tensorboard")
# The resolved per-category settings: the row holds the values the job ran with, where its config may say None.
_RESOLVED = ("memory_size", "di_scale", "feature_scale", "foreground_mask")
FINAL_METRICS = (*store.METRICS, "final_loss", *store.TIMINGS, "wall_s")
Param = str | int | float | bool | None


class TrackerMissing(UserError):
    """The tracker's library is not installed: says which extra installs it."""

    def __init__(self, tracker: str, package: str) -> None:
        super().__init__(f"{tracker} export needs {package}, which is not installed: pip install 'memseg-bench[{tracker}]'")


@dataclass(frozen=True)
class Exported:
    """One job sent: to which tracker, and where its run is (a run id, a folder)."""

    tracker: str
    job_id: str
    location: str


@dataclass(frozen=True)
class JobExport:
    """One tracker run: names, params (the job's config), step metrics, final metrics, pictures."""

    sweep: str
    job_id: str
    params: Mapping[str, Param]
    tags: Mapping[str, str]
    curves: TrainingCurves | None
    metrics: Mapping[str, float]  # final: the row's metrics (test set), final loss and timings; finite only
    pictures: tuple[Path, ...] = field(default=())

    def step_metrics(self) -> list[tuple[int, dict[str, float]]]:
        """The curves as (step, {series: value}) in step order, train and validation merged (W&B
        needs steps that only grow). A non-finite value (a diverged loss) is left out: not every
        tracker stores NaN or inf."""
        by_step: dict[int, dict[str, float]] = {}
        if self.curves is not None:
            for name, (steps, values) in self.curves.series().items():
                for step, value in zip(steps, values):
                    if math.isfinite(value):
                        by_step.setdefault(int(step), {})[name] = float(value)
        return sorted(by_step.items())


def job_export(row: Mapping[str, Any], curves: TrainingCurves | None, pictures: tuple[Path, ...]) -> JobExport:
    """A finished job's row (as `harness.store` writes it), curves and picture files as one run."""
    try:
        config = json.loads(row["config_json"])
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"job {row.get('job_id')!r}: its row has no readable config_json ({err})") from None
    params: dict[str, Param] = {k: v for k, v in config.items() if v is None or isinstance(v, str | int | float | bool)}
    params.update({k: _plain(row[k]) for k in _RESOLVED if k in row})
    tags = {
        k: str(row.get(k, ""))
        for k in ("sweep", "job_id", "category", "ablation", "variant", "profile", "dataset", "revision", "git_sha")
    }
    metrics = {k: float(row[k]) for k in FINAL_METRICS if _finite(row.get(k))}
    return JobExport(str(row["sweep"]), str(row["job_id"]), params, tags, curves, metrics, tuple(pictures))


def pictures_of(results_dir: str | Path, sweep: str, job_id: str) -> tuple[Path, ...]:
    """The job's report pictures on disk (harness.visuals_store): its panels, then its GIF."""
    visuals = load_visuals(results_dir, sweep, job_id)
    if visuals is None:
        return ()
    return tuple(p.file for p in visuals.panels) + ((visuals.gif,) if visuals.gif is not None else ())


def _plain(value: Any) -> Param:
    """A pandas/numpy cell as a plain Python value (NaN and missing: None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
