"""Each job's training curves on the driver's disk: <results>/<sweep>/curves/<job_id>.parquet,
written from `JobResult.curves` before the job's row (the commit marker), read back by `load_curves`.

The file is long: one row per (series, step), columns `series` (string: "train/loss",
"train/lr", "validation/image_auroc", ...; memseg.curves names them), `step` (int64) and `value`
(float64, NaN kept). A series is its rows in step order; the train series share their steps, the
validation series theirs. The job's row links the file in `curves_file` (relative to the sweep
folder; "" when the job recorded none, and in rows written before curves were).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness import paths
from memseg.atomic import write_atomic
from memseg.curves import TRAIN_GROUP, VALIDATION_GROUP, TrainingCurves

SCHEMA = pa.schema([("series", pa.string()), ("step", pa.int64()), ("value", pa.float64())])


def link(curves: TrainingCurves | None, job_id: str) -> str:
    """The `curves_file` of a job's row: its relative path when it has curves, else ""."""
    return "" if curves is None else paths.curves_relative(job_id)


def table_of(curves: TrainingCurves) -> pa.Table:
    """The curves in the long on-disk format (series, step, value)."""
    names, steps, values = [], [], []
    for name, (xs, ys) in curves.series().items():
        names += [name] * len(xs)
        steps += [int(x) for x in xs]
        values += [float(y) for y in ys]
    return pa.Table.from_pydict({"series": names, "step": steps, "value": values}, schema=SCHEMA)


def write_curves(results_dir: str | Path, sweep: str, job_id: str, curves: TrainingCurves) -> Path:
    """Write one job's curves atomically (a reader never sees half a file); the path."""
    table = table_of(curves)
    return write_atomic(paths.curves_path(results_dir, sweep, job_id), lambda tmp: pq.write_table(table, tmp))


def persist(results_dir: str | Path, sweep: str, job_id: str, curves: TrainingCurves | None) -> str:
    """Write the curves when the job recorded any, else remove a stale file of an earlier run of
    the job; the row's `curves_file` (`link`). The driver calls it before it writes the row."""
    if curves is None:
        paths.curves_path(results_dir, sweep, job_id).unlink(missing_ok=True)
    else:
        write_curves(results_dir, sweep, job_id, curves)
    return link(curves, job_id)


def load_curves(results_dir: str | Path, sweep: str, job_id: str) -> TrainingCurves | None:
    """The curves of one job, or None when it has none (a failed job, a job from before curves)."""
    path = paths.curves_path(results_dir, sweep, job_id)
    if not path.exists():
        return None
    try:
        table = pq.read_table(path, schema=SCHEMA)
    except (OSError, pa.ArrowInvalid) as err:
        raise ValueError(f"curves file {path} is unreadable ({err}); delete it to drop the job's curves") from None
    return curves_of(table)


def curves_of(table: pa.Table) -> TrainingCurves:
    """`TrainingCurves` from the long format. A group's steps are the union of its series' steps;
    a series without a value at one of them reads NaN there."""
    by_series: dict[str, dict[int, float]] = {}
    for name, step, value in zip(table["series"].to_pylist(), table["step"].to_pylist(), table["value"].to_pylist()):
        by_series.setdefault(str(name), {})[int(step)] = float("nan") if value is None else float(value)
    unknown = sorted(n for n in by_series if n.partition("/")[0] not in (TRAIN_GROUP, VALIDATION_GROUP))
    if unknown:
        raise ValueError(f"curves series {', '.join(unknown)} are neither {TRAIN_GROUP}/... nor {VALIDATION_GROUP}/...")
    groups: dict[str, tuple[tuple[int, ...], dict[str, tuple[float, ...]]]] = {}
    for group in (TRAIN_GROUP, VALIDATION_GROUP):
        members = {n.partition("/")[2]: points for n, points in by_series.items() if n.partition("/")[0] == group}
        steps = tuple(sorted({s for points in members.values() for s in points}))
        groups[group] = (steps, {k: tuple(points.get(s, float("nan")) for s in steps) for k, points in members.items()})
    (steps, train), (val_steps, validation) = groups[TRAIN_GROUP], groups[VALIDATION_GROUP]
    return TrainingCurves(steps=steps, train=train, val_steps=val_steps, validation=validation)
