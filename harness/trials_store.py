"""The trials of a recipe search on disk: one Parquet row per trial under
<results>/<search>/trials/<trial_id>.parquet, written atomically by the driver (harness.tune), read
back by `load_trials` for `harness report`.

A row holds the trial's recipe (the searched fields), its validation curve (every point the
trial reported, averaged over its jobs), whether the scheduler stopped it and at which step, and
the revision and evaluation protocol it ran under, like a job's row (harness.store).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness import paths
from memseg.atomic import write_atomic
from memseg.protocol import EvalProtocol

TRIALS = "trials"
STATUS_FINISHED, STATUS_STOPPED, STATUS_FAILED = "finished", "stopped", "failed"
EVALUATED_ON = "validation: simulated anomalies on held-out normal training images (never the test set)"


@dataclass(frozen=True)
class TrialRow:
    """One trial of a search, as committed. `curve` is one (step, image_auroc, pixel_auroc, loss)
    per validation point; `stopped_at_step` is -1 unless the scheduler stopped it."""

    trial_id: str
    search: str
    status: str  # finished | stopped | failed
    recipe: dict[str, Any]
    metric: str
    mode: str
    value: float  # the metric at the trial's last point (NaN: none)
    steps: int  # the steps a trial trains for when it is not stopped
    last_step: int  # the last step it reported
    stopped_at_step: int
    curve: tuple[tuple[int, float, float, float], ...]
    categories: tuple[str, ...]
    seeds: tuple[int, ...]
    revision: int
    protocol: EvalProtocol
    config_json: str  # the first job's whole config (the recipe the searched fields were put into)
    wall_s: float
    finished_at: str
    error: str = ""

    @property
    def stopped(self) -> bool:
        return self.status == STATUS_STOPPED

    def columns(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "search": self.search,
            "status": self.status,
            "stopped": self.stopped,
            "stopped_at_step": self.stopped_at_step,
            "last_step": self.last_step,
            "steps": self.steps,
            "metric": self.metric,
            "mode": self.mode,
            "value": self.value,
            "recipe_json": json.dumps(self.recipe, sort_keys=True),
            "curve_json": json.dumps([list(p) for p in self.curve]),
            "categories": ",".join(self.categories),
            "seeds": ",".join(str(s) for s in self.seeds),
            "evaluated_on": EVALUATED_ON,
            "revision": self.revision,
            **self.protocol.columns(),
            "config_json": self.config_json,
            "wall_s": self.wall_s,
            "finished_at": self.finished_at,
            "error": self.error,
        }


_PROTOCOL_TYPES = {str: pa.string(), int: pa.int64(), float: pa.float64()}
SCHEMA = pa.schema(
    [
        ("trial_id", pa.string()),
        ("search", pa.string()),
        ("status", pa.string()),
        ("stopped", pa.bool_()),
        ("stopped_at_step", pa.int64()),
        ("last_step", pa.int64()),
        ("steps", pa.int64()),
        ("metric", pa.string()),
        ("mode", pa.string()),
        ("value", pa.float64()),
        ("recipe_json", pa.string()),
        ("curve_json", pa.string()),
        ("categories", pa.string()),
        ("seeds", pa.string()),
        ("evaluated_on", pa.string()),
        ("revision", pa.int64()),
        *((f.name, _PROTOCOL_TYPES[type(getattr(EvalProtocol(), f.name))]) for f in dataclasses.fields(EvalProtocol)),
        ("config_json", pa.string()),
        ("wall_s", pa.float64()),
        ("finished_at", pa.string()),
        ("error", pa.string()),
    ]
)


def trials_dir(results_dir: str | Path, search: str) -> Path:
    return paths.sweep_dir(results_dir, search) / TRIALS


def commit_trial(results_dir: str | Path, row: TrialRow) -> Path:
    """Write one trial's row atomically (a reader never sees half a file); the path."""
    table = pa.Table.from_pylist([row.columns()], schema=SCHEMA)
    path = trials_dir(results_dir, row.search) / f"{row.trial_id}.parquet"
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def list_searches(results_dir: str | Path) -> list[str]:
    """Names of the recipe searches under `results_dir` (folders holding committed trials)."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")) and has_trials(root, p.name))


def has_trials(results_dir: str | Path, search: str) -> bool:
    folder = trials_dir(results_dir, search)
    return folder.is_dir() and any(folder.glob("*.parquet"))


def load_trials(results_dir: str | Path, search: str) -> pd.DataFrame:
    """Every committed trial of the search (empty when none), in trial id order. ValueError naming
    a file that cannot be read."""
    frames = []
    for path in sorted(trials_dir(results_dir, search).glob("*.parquet")):
        try:
            frames.append(pq.read_table(path).to_pandas())
        except (OSError, pa.ArrowInvalid) as err:
            raise ValueError(f"trial file {path} is unreadable ({err}); delete it to drop that trial") from None
    if not frames:
        return pd.DataFrame(columns=SCHEMA.names)
    return pd.concat(frames, ignore_index=True)


def curve_of(row: Any) -> list[tuple[int, float, float, float]]:
    """A loaded row's validation curve: (step, image_auroc, pixel_auroc, loss) per point."""
    return [(int(p[0]), float(p[1]), float(p[2]), float(p[3])) for p in json.loads(str(row["curve_json"]) or "[]")]


def recipe_of(row: Any) -> dict[str, Any]:
    """A loaded row's searched fields and their values."""
    loaded: dict[str, Any] = json.loads(str(row["recipe_json"]) or "{}")
    return loaded
