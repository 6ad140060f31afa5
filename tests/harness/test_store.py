"""The Parquet store: atomic commits, one schema for ok and failed rows, temp files never read."""

from __future__ import annotations

import math
import os
import re

import pytest

from harness import paths, store
from harness.progress import WorkerInfo
from memseg import atomic
from memseg.config import JobConfig
from tests.harness.fakes import fake_result


def _ok_row(config: JobConfig, sweep: str = "s"):
    result = fake_result(config, "2026-01-01T00:00:00+00:00")
    row = store.row_from_result(
        store.Attempt(sweep, "tiny", attempts=1, worker=WorkerInfo(42, "h", "n"), recorded_at="t", wall_s=1.0), result
    )
    return row, store.scores_frame(result)


def test_ok_and_failed_rows_share_the_full_schema(tmp_path):
    good, bad = JobConfig("bottle", steps=4), JobConfig("carpet", steps=4)
    row, scores = _ok_row(good)
    store.write_job(tmp_path, row, scores)
    failed = store.row_from_failure(
        store.Attempt("s", "tiny", attempts=3, recorded_at="t"), bad, "RuntimeError: boom", "Traceback ..."
    )
    store.write_job(tmp_path, failed, None)

    df = store.load_results(tmp_path, "s")
    assert list(df.columns) == store.JOB_SCHEMA.names
    assert len(df) == 2
    ok = df.set_index("category").loc["bottle"]
    assert ok.status == "ok" and ok.worker_pid == 42 and ok.steps == 4
    # The fake reports no sim_images_per_s / peak_mem_mb: missing timings are NaN, not errors.
    assert math.isnan(ok.sim_images_per_s) and math.isnan(ok.peak_mem_mb)
    fail = df.set_index("category").loc["carpet"]
    assert fail.status == "failed" and fail.error == "RuntimeError: boom" and fail.attempts == 3
    assert math.isnan(fail.image_auroc) and fail.config_json == bad.to_json()
    assert store.job_statuses(tmp_path, "s") == {good.job_id: "ok", bad.job_id: "failed"}
    assert len(store.load_scores(tmp_path, "s", good.job_id)) == 3


def test_rows_record_the_effective_category_settings(tmp_path):
    table, overridden = JobConfig("transistor", steps=4), JobConfig("screw", steps=4, di_scale=5.0, foreground_mask=False)
    for config in (table, overridden):
        store.write_job(tmp_path, *_ok_row(config))
    failed = store.row_from_failure(
        store.Attempt("s", "tiny", attempts=1, recorded_at="t"), JobConfig("toothbrush", ablation="unscaled"), "x"
    )
    store.write_job(tmp_path, failed, None)
    df = store.load_results(tmp_path, "s").set_index("category")
    columns = ["memory_size", "di_scale", "feature_scale", "foreground_mask"]
    assert list(df.loc["transistor", columns]) == [30, 1000.0, 1.0, True]
    assert list(df.loc["screw", columns]) == [120, 5.0, 100.0, False]
    assert list(df.loc["toothbrush", columns]) == [10, 1.0, 1.0, True]


def test_stray_temp_files_are_never_read(tmp_path):
    config = JobConfig("bottle")
    row, scores = _ok_row(config)
    store.write_job(tmp_path, row, scores)
    jobs = tmp_path / "s" / "jobs"
    (jobs / f".{JobConfig('grid').job_id}.parquet.tmp-999").write_bytes(b"half a file")
    assert list(store.load_results(tmp_path, "s")["job_id"]) == [config.job_id]
    assert set(store.job_statuses(tmp_path, "s")) == {config.job_id}


def test_a_crash_before_the_commit_leaves_the_job_pending(tmp_path, monkeypatch):
    """Scores are written first; the job file is the commit marker. If its rename never happens
    the job is not done, and no temp file is left behind."""
    config = JobConfig("bottle")
    row, scores = _ok_row(config)
    real_replace = os.replace

    def crash_on_job_file(src, dst):
        if "/jobs/" in str(dst):
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", crash_on_job_file)
    with pytest.raises(OSError):
        store.write_job(tmp_path, row, scores)
    monkeypatch.undo()
    assert paths.scores_path(tmp_path, "s", config.job_id).exists()
    assert store.job_statuses(tmp_path, "s") == {}
    assert store.load_results(tmp_path, "s").empty
    assert not [p for p in (tmp_path / "s" / "jobs").iterdir()]


def test_a_failed_rerun_removes_stale_scores(tmp_path):
    config = JobConfig("bottle")
    row, scores = _ok_row(config)
    store.write_job(tmp_path, row, scores)
    store.write_job(tmp_path, store.row_from_failure(store.Attempt("s", "tiny", attempts=1, recorded_at="t"), config, "x"), None)
    assert not paths.scores_path(tmp_path, "s", config.job_id).exists()
    assert store.job_statuses(tmp_path, "s") == {config.job_id: "failed"}


def test_list_sweeps_and_empty_results(tmp_path):
    assert store.list_sweeps(tmp_path / "missing") == []
    empty = store.load_results(tmp_path)
    assert empty.empty and list(empty.columns) == store.JOB_SCHEMA.names
    for sweep in ("b", "a"):
        row, scores = _ok_row(JobConfig("bottle"), sweep)
        store.write_job(tmp_path, row, scores)
    (tmp_path / "_data").mkdir()
    store.save_spec(tmp_path, "c", "name: c\n")
    assert store.list_sweeps(tmp_path) == ["a", "b", "c"]
    assert len(store.load_results(tmp_path)) == 2
    assert store.read_spec(tmp_path, "c") == "name: c\n"


def test_an_unreadable_result_file_is_named_and_its_job_is_not_counted(tmp_path):
    (tmp_path / "s" / "jobs").mkdir(parents=True)
    (tmp_path / "s" / "jobs" / "x.parquet").write_bytes(b"not parquet")
    read = store.read_sweep(tmp_path, "s")
    assert read.rows.empty and list(read.damaged) == ["x"]
    assert re.search(r"x\.parquet is unreadable.*not counted; `harness run` runs the job again", read.damaged["x"])
    assert store.job_states(tmp_path, "s") == {}  # not done: a run runs it again


def test_the_step_path_and_its_fallback_reach_the_row(tmp_path):
    """How the training steps ran (memseg.train_step) is a column; a row without it (failed, or
    written before it existed: see test_resume_fixture) reads it as empty."""
    import dataclasses

    config = JobConfig("bottle", steps=4)
    result = dataclasses.replace(
        fake_result(config, "2026-01-01T00:00:00+00:00"), step_path="eager", step_fallback="CUDA graph capture failed: boom"
    )
    row = store.row_from_result(store.Attempt("s", "tiny", attempts=1, worker=None, recorded_at="t", wall_s=1.0), result)
    store.write_job(tmp_path, row, store.scores_frame(result))
    failed = store.row_from_failure(store.Attempt("s", "tiny", attempts=1, recorded_at="t"), JobConfig("carpet", steps=4), "E")
    store.write_job(tmp_path, failed, None)
    rows = store.load_results(tmp_path, "s").set_index("category")
    assert rows.loc["bottle", "step_path"] == "eager" and "boom" in rows.loc["bottle", "step_fallback"]
    assert rows.loc["carpet", "step_path"] == "" and rows.loc["carpet", "step_fallback"] == ""


def test_rows_written_before_scoring_protocols_read_as_mvtec_ad_scoring() -> None:
    """Before each data set had its own scoring, every data set was scored with MVTec AD's four
    numbers and had no second AUPRO: such a row reads as scoring mvtec_ad (so it still pairs with
    a new MVTec AD row), its new metrics empty."""
    import pyarrow as pa

    old = store.empty_row() | {"job_id": "a", "status": "ok", "metrics_version": "1", "dataset": "visa"}
    old.update(scoring="", low_aupro_fpr_limit=math.nan, top_k=100, revision=5)
    rows = store._rows_of(pa.Table.from_pylist([old], schema=store.JOB_SCHEMA))
    assert rows.loc[0, "scoring"] == "mvtec_ad" and rows.loc[0, "low_aupro_fpr_limit"] == 0.05
    assert rows[["pixel_aupro_low", "image_aupr"]].isna().all(axis=None)
