"""Each job's training curves on disk: the long Parquet file round trips (NaN included), the row
links it, the driver writes it before the row, rows from before curves still load, and a bad file
is named."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import curves_store, driver, paths, store
from harness.progress import WorkerInfo
from memseg.config import JobConfig
from memseg.curves import TrainingCurves
from memseg.profiles import profile
from tests.harness.fakes import fake_result
from tests.harness.plans import sweep_plan

SWEEP = "s"


def _curves() -> TrainingCurves:
    return TrainingCurves(
        steps=(0, 25, 50),
        train={"loss": (1.0, math.nan, 0.25), "loss_l1": (0.6, 0.4, 0.15), "lr": (0.04, 0.03, 0.01)},
        val_steps=(25, 50),
        validation={"image_auroc": (0.7, 0.9), "loss": (0.4, 0.3)},
    )


def _config(seed: int = 0) -> JobConfig:
    return JobConfig.from_dict(profile("tiny") | {"category": "bottle", "dataset": "synthetic", "seed": seed})


def _same(a: TrainingCurves, b: TrainingCurves) -> bool:
    def plain(c: TrainingCurves) -> dict:
        return {k: (s, tuple("nan" if math.isnan(v) else v for v in vs)) for k, (s, vs) in c.series().items()}

    return plain(a) == plain(b) and a.steps == b.steps and a.val_steps == b.val_steps


def test_curves_round_trip_in_the_long_format(tmp_path: Path):
    path = curves_store.write_curves(tmp_path, SWEEP, "job-a", _curves())
    assert path == tmp_path / SWEEP / "curves" / "job-a.parquet"
    table = pq.read_table(path)
    assert table.schema.equals(curves_store.SCHEMA)
    assert set(table["series"].to_pylist()) == {
        "train/loss",
        "train/loss_l1",
        "train/lr",
        "validation/image_auroc",
        "validation/loss",
    }
    assert len(table) == 3 * 3 + 2 * 2
    back = curves_store.load_curves(tmp_path, SWEEP, "job-a")
    assert back is not None and _same(back, _curves())
    assert curves_store.load_curves(tmp_path, SWEEP, "job-b") is None


def test_a_series_missing_a_step_reads_nan_there(tmp_path: Path):
    table = pa.Table.from_pydict(
        {"series": ["train/loss", "train/loss", "train/lr"], "step": [0, 10, 10], "value": [1.0, 0.5, 0.1]},
        schema=curves_store.SCHEMA,
    )
    curves = curves_store.curves_of(table)
    assert curves.steps == (0, 10) and curves.train["loss"] == (1.0, 0.5)
    assert math.isnan(curves.train["lr"][0]) and curves.train["lr"][1] == 0.1 and curves.val_steps == ()


def test_an_unreadable_file_is_named(tmp_path: Path):
    path = paths.curves_path(tmp_path, SWEEP, "job-a")
    path.parent.mkdir(parents=True)
    path.write_text("not parquet")
    with pytest.raises(ValueError, match=str(path)):
        curves_store.load_curves(tmp_path, SWEEP, "job-a")


def _row(result) -> dict:
    return store.row_from_result(
        store.Attempt(SWEEP, "tiny", attempts=1, worker=WorkerInfo(1, "h", "n"), recorded_at="t", wall_s=1.0), result
    )


def test_the_row_links_its_curves_and_a_job_without_curves_links_none(tmp_path: Path):
    with_curves = dataclasses.replace(fake_result(_config(0), "t"), curves=_curves())
    without = fake_result(_config(1), "t")
    for result in (with_curves, without):
        curves_store.persist(tmp_path, SWEEP, result.job_id, result.curves)
        store.write_job(tmp_path, _row(result))
    rows = store.load_results(tmp_path, SWEEP).set_index("job_id")
    link = rows.loc[with_curves.job_id, "curves_file"]
    assert link == f"curves/{with_curves.job_id}.parquet" and (paths.sweep_dir(tmp_path, SWEEP) / str(link)).exists()
    assert rows.loc[without.job_id, "curves_file"] == ""


def test_rows_written_before_curves_still_load(tmp_path: Path):
    row = _row(fake_result(_config(0), "t"))
    old_schema = pa.schema([f for f in store.JOB_SCHEMA if f.name != "curves_file"])
    path = store.job_path(tmp_path, SWEEP, row["job_id"])
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in row.items() if k != "curves_file"}], schema=old_schema), path)
    rows = store.load_results(tmp_path, SWEEP)
    assert rows["curves_file"].tolist() == [""] and rows["status"].tolist() == ["ok"]


def test_the_driver_writes_the_curves_before_the_row_and_drops_stale_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`_Loop._persist` (no Ray needed: the attempt's actor and refs are not touched there)."""
    config = _config(0)
    loop = driver._Loop(sweep_plan([], SWEEP, tmp_path), [], "unused", lambda event: None, 0.1)
    attempt = driver._Attempt(config, 1, None, None, None, 0.0)
    seen_at_commit: list[bool] = []
    write_job = store.write_job

    def spy(results_dir, row, scores=None):  # records what was on disk when the row was committed
        seen_at_commit.append(
            (paths.sweep_dir(results_dir, row["sweep"]) / row["curves_file"]).is_file() if row["curves_file"] else False
        )
        return write_job(results_dir, row, scores)

    monkeypatch.setattr(store, "write_job", spy)
    result = fake_result(config, "t")
    loop._persist(attempt, dataclasses.replace(result, curves=_curves()), 1.0)
    assert seen_at_commit == [True]
    loop._persist(attempt, result, 1.0)  # the job ran again and recorded none: no stale file stays
    assert not paths.curves_path(tmp_path, SWEEP, config.job_id).exists()
    assert store.load_results(tmp_path, SWEEP)["curves_file"].tolist() == [""]
