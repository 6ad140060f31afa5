"""`harness tune`: the search section of a sweep file, ASHA stopping a clearly bad trial (a fake
trial reporting a made-up curve), and a real search on generated data that picks the better
learning rate by validation alone, never opening a test file, whose pick then wins on the test set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from harness.__main__ import build_parser, main
from harness.options import RunOptions
from harness.plan import plan_jobs
from harness.search import OFFICIAL, TUNED, load_search, parse_search, search_sweep, tuned_sweep
from harness.sweep import SweepSpec, expand, load_sweep
from harness.trials_store import TrialRow, commit_trial, curve_of, load_trials, recipe_of, trials_dir
from memseg import job
from memseg.names import UnknownNameError
from memseg.protocol import EvalProtocol
from memseg.revision import REVISION
from tests.harness.tune_fakes import quality


def _sweep_file(folder: Path, search: dict, **sweep) -> Path:
    path = folder / "search.yaml"
    path.write_text(yaml.safe_dump({"profile": "tiny", "categories": ["bottle"], **sweep, "search": search}))
    return path


def test_the_search_section_is_checked_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = SweepSpec(categories=("bottle", "carpet"), seeds=(0, 1, 2), profile="smoke")
    search = parse_search({"space": {"lr": {"grid": [1e-5, 7e-3]}, "optimizer": {"choice": ["sgd", "adamw"]}}, "trials": 3}, spec)
    assert search.trial_count() == 6 and search.metric == "image_auroc" and search.mode == "max"
    assert parse_search({"space": {"lr": {"uniform": [0.001, 0.01]}}, "metric": "loss"}, spec).mode == "min"
    assert search_sweep(spec, search).seeds == (0,)  # the search runs on one seed unless told; the final run on all
    mistakes = [
        ({"space": {"lr": {"normal": [0, 1]}}}, "normal"),
        ({"space": {"lr": {"loguniform": [0.0, 1e-2]}}}, "low > 0"),
        ({"space": {"lrr": {"choice": [1e-3]}}}, "lrr"),
        ({"space": {"optimizer": {"choice": ["sgd", 3]}}}, "optimizer"),
        ({"space": {"lr": {"choice": [1e-3]}}, "metric": "test_auroc"}, "test_auroc"),
        ({"space": {"lr": {"choice": [1e-3]}}, "categories": ["screw"]}, "screw"),
        ({"space": {"lr": {"choice": [1e-3]}}, "trials": 0}, "trials"),
        ({}, "space"),
    ]
    for raw, named in mistakes:
        with pytest.raises((ValueError, UnknownNameError), match=named):
            parse_search(raw, spec)
    final = tuned_sweep(spec, {"lr": 0.003}, "s-final")
    assert final.variants == {OFFICIAL: {}, TUNED: {"lr": 0.003}} and final.seeds == (0, 1, 2)
    loaded_spec, loaded = load_search(_sweep_file(tmp_path, {"space": {"lr": {"grid": [1e-5, 1e-2]}}}))
    assert loaded_spec.name == "search" and loaded.space[0].values == (1e-5, 1e-2)
    # on the command line: one line and exit 2, before Ray starts
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"profile": "tiny", "categories": ["bottle"]}))
    bad = _sweep_file(tmp_path, {"space": {"lr": {"normal": [0, 1]}}})
    for sweep, named in ((plain, "needs a `search:` section"), (bad, "normal")):
        assert main(["tune", "--sweep", str(sweep), "--results", str(tmp_path / "res")]) == 2
        assert named in capsys.readouterr().err


def test_tune_flags_replace_the_file_as_run_flags_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli_tune import spec_and_search
    from harness.sweep import flags_digest

    sweep = _sweep_file(tmp_path, {"space": {"lr": {"grid": [1e-5, 1e-2]}}}, jobs_per_gpu=2, overrides={"steps": 7})

    def spec_of(*flags: str):
        return spec_and_search(build_parser().parse_args(["tune", "--sweep", str(sweep), *flags]))

    spec, _search, options = spec_of("--gpus-per-job", "0.5", "--lr", "0.01")
    # --gpus-per-job replaces the file's jobs_per_gpu (before: "give jobs_per_gpu or gpus_per_job, not both")
    assert (spec.gpus_per_job, spec.jobs_per_gpu) == (0.5, None)
    assert spec.overrides == {"steps": 7, "lr": 0.01} and options.name_digest == flags_digest({"lr": 0.01})
    assert spec_of("--jobs-per-gpu", "3")[0].jobs_per_gpu == 3
    # both flags: one line and exit 2, before Ray starts
    both = ["tune", "--sweep", str(sweep), "--results", str(tmp_path / "res"), "--jobs-per-gpu", "3", "--gpus-per-job", "0.5"]
    assert main(both) == 2
    err = capsys.readouterr().err
    assert "--jobs-per-gpu or --gpus-per-job, not both" in err and "Traceback" not in err


@pytest.mark.slow
def test_asha_stops_a_clearly_bad_trial_early_and_its_row_says_so(
    ray_session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four learning rates, the worse ones reporting a flatter curve, and more slowly: ASHA (rungs at
    10 and 20 of 40 steps, halving) stops at least one early; its row says at which step, and
    `harness report` shows the search: best trials, the field against the metric, the stops."""
    from harness.tune import run_search

    spec, search = load_search(
        _sweep_file(
            tmp_path,
            {"space": {"lr": {"grid": [1e-2, 1e-3, 1e-4, 1e-5]}}, "trials": 1, "grace_steps": 10},
            overrides={"steps": 40, "val_every": 5, "val_images": 2},
        )
    )
    spec = search_sweep(spec, search)
    plan = plan_jobs(expand(spec), spec, RunOptions(results=tmp_path / "res", data_check=None))
    outcome = run_search(plan, search, job_fn="tests.harness.tune_fakes:curve_job")
    rows = load_trials(tmp_path / "res", spec.name or "")
    assert len(rows) == 4 and set(rows["revision"]) == {outcome.rows[0].revision}
    stopped = rows[rows["stopped"]]
    assert len(stopped) >= 1, rows[["recipe_json", "status", "last_step"]]
    for _, row in stopped.iterrows():
        assert row["status"] == "stopped" and row["stopped_at_step"] == row["last_step"] < 40
        assert quality(recipe_of(row)["lr"]) < 1  # the best lr is never the one stopped
        assert curve_of(row)[-1][0] == row["stopped_at_step"]
    assert outcome.best is not None and outcome.best.recipe == {"lr": 1e-2} and outcome.best.last_step == 40
    assert set(rows["evaluated_on"].str.startswith("validation")) == {True}
    # the same command again restores Tune's state; another search in the same folder is refused
    from harness.tune import check_restorable, marker_text

    assert check_restorable(tmp_path / "res", "search", marker_text(plan, search))
    with pytest.raises(ValueError, match="another search"):
        check_restorable(tmp_path / "res", "search", marker_text(plan, replace(search, trials=2)))
    capsys.readouterr()
    assert main(["report", "--results", str(tmp_path / "res"), "--name", "search", "--html"]) == 0
    shown = capsys.readouterr().out
    assert "best trials by image_auroc" in shown and "Spearman" in shown
    assert f"the scheduler stopped {len(stopped)} of 4 trials early" in shown
    page = (tmp_path / "res" / "search" / "report.html").read_text()
    assert page.count("<svg") == 1 and "lr (log) against image_auroc" in page


@pytest.mark.slow
def test_a_search_picks_the_better_lr_by_validation_and_it_wins_on_the_test_set(ray_session, tmp_path: Path) -> None:
    """lr 1e-5 against 7e-3 on the smoke recipe (64 px, 20 steps, bottle, generated data): the search
    picks 7e-3 by validation image AUROC with every test file's decoding made to fail in its workers
    (no trial failed: none read the test set), writes it as the `tuned` variant, and that recipe beats
    1e-5 on the test set."""
    sweep = _sweep_file(
        tmp_path,
        {"space": {"lr": {"grid": [1e-5, 7e-3]}}, "trials": 1, "scheduler": "none"},
        profile="smoke",
        seeds=[0],
        overrides={"steps": 20, "val_every": 10, "val_images": 8},
    )
    results, out = tmp_path / "res", tmp_path / "tuned.yaml"
    argv = ["tune", "--sweep", str(sweep), "--results", str(results), "--out", str(out)]
    assert main([*argv, "--job-fn", "tests.harness.tune_fakes:validate_never_opening_tests"]) == 0
    rows = load_trials(results, "search")
    assert list(rows["status"]) == ["finished", "finished"], list(rows["error"])
    final = load_sweep(out)
    assert final.variants == {OFFICIAL: {}, TUNED: {"lr": 7e-3}}
    tuned = next(c for c in expand(final) if c.variant == TUNED)
    data_root = str(next((results / "_data").glob("synthetic-*")))
    chosen = job.run(tuned.replace(data_root=data_root))
    other = job.run(tuned.replace(data_root=data_root, lr=1e-5))
    for metric in ("image_auroc", "pixel_auroc"):
        assert chosen.metrics[metric] > other.metrics[metric] + 0.1, (metric, chosen.metrics, other.metrics)


def test_a_trial_of_several_jobs_reports_on_one_time_axis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two jobs in a trial run one after another: the time is the steps done over both, and in the
    second job each point is the mean of both jobs at that step (no Ray: Tune's report is noted)."""
    from harness import tune as tune_module

    reported: list[dict] = []
    monkeypatch.setattr(tune_module.tune, "report", reported.append)
    spec = SweepSpec(categories=("bottle", "carpet"), profile="tiny", overrides={"steps": 10, "val_every": 5, "val_images": 2})
    configs = [c.to_json() for c in expand(spec)]
    tune_module.run_trial(
        {"lr": 1e-3}, configs=configs, job_fn="tests.harness.tune_fakes:curve_job", synthetic=None, num_threads=1
    )
    assert [r["step"] for r in reported] == [5, 10, 15, 20]
    one_job = 0.5 + 0.45 * quality(1e-3) * 5 / 10
    assert reported[0]["image_auroc"] == pytest.approx(one_job) == reported[2]["image_auroc"]
    assert set(reported[0]) == {"step", "image_auroc", "pixel_auroc", "loss"}


def _trial(search: str, trial_id: str, status: str, lr: float, value: float) -> TrialRow:
    return TrialRow(
        trial_id=trial_id, search=search, status=status, recipe={"lr": lr}, metric="image_auroc", mode="max", value=value,
        steps=40, last_step=40 if status == "finished" else 10, stopped_at_step=10 if status == "stopped" else -1,
        curve=((10, value, value, 1 - value),), categories=("bottle",), seeds=(0,), revision=REVISION,
        protocol=EvalProtocol(), config_json="{}", wall_s=1.0, finished_at="t", error="boom" if status == "failed" else "",
    )  # fmt: skip


def test_status_lists_each_search_with_its_trials_and_best_finished_recipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`harness status` shows recipe searches beside sweeps: trials by status and the best finished
    trial by the search's own metric (a stopped trial with a higher value is not the best); a search
    with an unreadable trial file is named in a warning and the others are still shown."""
    results = tmp_path / "res"
    for row in (
        _trial("lr-search", "t0", "finished", 1e-3, 0.81),
        _trial("lr-search", "t1", "stopped", 1e-2, 0.95),
        _trial("lr-search", "t2", "finished", 1e-2, 0.88),
        _trial("lr-search", "t3", "failed", 1e-5, float("nan")),
        _trial("broken", "t0", "finished", 1e-3, 0.7),
    ):
        commit_trial(results, row)
    (trials_dir(results, "broken") / "t1.parquet").write_bytes(b"not parquet")
    assert main(["status", "--results", str(results)]) == 0
    out, err = (" ".join(text.replace("│", " ").split()) for text in capsys.readouterr())
    assert "recipe searches" in out and "no sweeps" not in out
    assert "lr-search 4 2 1 1 image_auroc 0.8800 lr=0.01" in out, out
    assert "broken:" in err and "unreadable" in err and "broken 1" not in out
    assert main(["status", "--results", str(results), "--name", "lr-search"]) == 0
    assert "lr-search 4 2 1 1" in " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert main(["status", "--results", str(results), "--name", "nothing"]) == 2
    capsys.readouterr()
    assert main(["report", "--results", str(results)]) == 0  # the sweeps' tables; the searches named apart
    assert "recipe searches not shown here: broken, lr-search" in " ".join(capsys.readouterr().err.split())
