"""The real `memseg.job.run` through the whole harness: generated data, the tiny profile, one
category, in a Ray actor. Minutes of CPU at most; it needs the model and data layers."""

from __future__ import annotations

import math

import pytest

from harness import store
from memseg.data.synthetic import read_marker


@pytest.mark.slow
def test_tiny_profile_on_generated_data_end_to_end(ray_session, cli, capsys, tmp_path):
    """Also the step path on logical GPUs: a CUDA graph asked for where the actor has no CUDA
    device runs eagerly, and the row says so and why."""
    results = tmp_path / "results"
    argv = ["run", "--results", str(results), "--profile", "tiny", "--categories", "bottle,carpet", "--seeds", "0"]
    argv += ["--step-mode", "graph"]
    status = cli(argv)
    out = capsys.readouterr().out
    rows = store.load_results(results, "tiny-synthetic")
    assert status == 0, rows[["job_id", "error", "traceback"]].to_string() if len(rows) else out
    assert "generated MVTec-layout set" in out and "ran 2 job(s)" in out
    assert read_marker(results / "_data" / "synthetic-64")["categories"] == ["bottle", "carpet"]  # the sweep's, not all 15
    assert list(rows["status"]) == ["ok", "ok"]
    for row in rows.itertuples():
        assert 0.0 <= row.image_auroc <= 1.0 and 0.0 <= row.pixel_auroc <= 1.0
        assert math.isfinite(row.final_loss) and row.steps == 4 and row.image_size == 64
        assert row.torch and row.device == "cpu" and row.train_steps_per_s > 0
        assert row.step_path == "eager" and "CUDA graphs need a CUDA device" in row.step_fallback
        scores = store.load_scores(results, "tiny-synthetic", row.job_id)
        assert len(scores) > 0 and set(scores["label"]) == {0, 1}
    # Resume: nothing left to run.
    assert cli(argv) == 0
    assert "ran 0 job(s)" in capsys.readouterr().out
