"""`python -m harness run|status` end to end with fake jobs: the job table, the summary, resume,
exit codes, and errors for bad input before anything starts."""

from __future__ import annotations

import re
import sys
from datetime import datetime

import pytest

from harness import store
from harness.plan import choose_profile
from harness.sweep import SweepSpec
from memseg.names import CATEGORIES

FAKES = "tests.harness.fakes"


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "│" in line]


def _run_argv(results, data_root, *extra):
    return [
        "run",
        "--results",
        str(results),
        "--profile",
        "tiny",
        "--dataset",
        "mvtec",
        "--data-root",
        str(data_root),
        "--job-fn",
        f"{FAKES}:quick_job",
        "--data-check",
        f"{FAKES}:fake_check",
        *extra,
    ]


@pytest.mark.slow
def test_run_twelve_jobs_then_resume_with_the_same_table(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    cats = ("bottle", "carpet", "grid")
    argv = _run_argv(
        tmp_path / "res", mvtec_dirs(*cats), "--categories", ",".join(cats), "--seeds", "0,1", "--ablations", "full,no_memory"
    )
    assert cli(argv) == 0
    first = capsys.readouterr().out
    assert "sweep tiny-mvtec: 12 jobs" in first and "profile tiny" in first and "ran 12 job(s)" in first
    rows = store.load_results(tmp_path / "res", "tiny-mvtec")
    assert len(rows) == 12 and list(rows.columns) == store.JOB_SCHEMA.names and (rows.status == "ok").all()
    assert len(list((tmp_path / "res" / "tiny-mvtec" / "jobs").glob("*.parquet"))) == 12
    assert rows["worker_pid"].nunique() > 1  # more than one actor process
    starts = rows["started_at"].map(datetime.fromisoformat)
    ends = rows["finished_at"].map(datetime.fromisoformat)
    assert max(((starts <= s) & (ends > s)).sum() for s in starts) > 1  # and they overlapped in time
    table = _table_lines(first)
    for category in cats:
        assert any(line.split("│")[1].strip() == category for line in table)
    assert (tmp_path / "res" / "tiny-mvtec" / "sweep.yaml").exists()

    assert cli(argv) == 0
    second = capsys.readouterr().out
    assert "ran 0 job(s)" in second and "12 were done before" in second
    assert _table_lines(second) == table


@pytest.mark.slow
def test_a_run_reads_the_store_once_and_discovers_the_cluster_once(ray_session, cli, tmp_path, mvtec_dirs, monkeypatch):
    """Before the first job starts, the sweep folder is read and the cluster discovered and sized once
    (harness.plan), then handed to the driver; the end of the run reads the folder once more, for the
    summary of what it wrote. Done jobs are still skipped on the next run."""
    from harness import cluster

    calls = {"read_sweep": 0, "discover": 0, "default_request": 0}

    def counted(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counted(store, "read_sweep")
    counted(cluster, "discover")
    counted(cluster, "default_request")
    argv = _run_argv(tmp_path / "res", mvtec_dirs("bottle", "grid"), "--categories", "bottle,grid")
    assert cli(argv) == 0
    assert calls == {"read_sweep": 2, "discover": 1, "default_request": 1}  # the plan's read, the summary's
    assert cli(argv) == 0  # all done: nothing to run
    assert calls["read_sweep"] == 4 and calls["discover"] == 2


@pytest.mark.slow
def test_a_failed_job_gives_exit_1_and_is_rerun_only_when_asked(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    results, data = tmp_path / "res", mvtec_dirs("bottle", "carpet")
    argv = _run_argv(results, data, "--categories", "bottle,carpet")
    picky = [a if a != f"{FAKES}:quick_job" else f"{FAKES}:picky_job" for a in argv]
    assert cli(picky) == 1
    out = capsys.readouterr().out
    assert "failed jobs" in out and "loss became non-finite" in out

    assert cli(["status", "--results", str(results)]) == 0
    status = capsys.readouterr().out
    row = next(line for line in status.splitlines() if "tiny-mvtec" in line)
    assert [c.strip() for c in row.split("│")[4:8]] == ["2", "1", "1", "0"]  # jobs, done, failed, pending

    assert cli(argv) == 1  # failed jobs are not re-run by default, and still count
    assert "--retry-failed" in capsys.readouterr().out
    assert cli([*argv, "--retry-failed"]) == 0
    assert (store.load_results(results, "tiny-mvtec").status == "ok").all()


@pytest.mark.slow
def test_impossible_gpu_request_exits_2_before_any_job(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    argv = _run_argv(tmp_path / "res", mvtec_dirs("bottle"), "--categories", "bottle", "--gpus-per-job", "5")
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "each job asks for 5 GPU(s) but the largest node has 4" in err and "--gpus-per-job" in err
    assert store.job_statuses(tmp_path / "res", "tiny-mvtec") == {}


def test_dry_run_lists_jobs_and_runs_nothing(cli, capsys, tmp_path):
    argv = [
        "run",
        "--results",
        str(tmp_path),
        "--profile",
        "tiny",
        "--categories",
        "bottle,zipper",
        "--seeds",
        "0,1",
        "--dry-run",
        "--job-fn",
        f"{FAKES}:failing_job",
    ]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "sweep tiny-synthetic: 4 jobs" in out and "generated MVTec-layout set" in out
    lines = _table_lines(out)
    assert len(lines) == 4 and all(line.rstrip("│ ").endswith("no") for line in lines)
    assert not (tmp_path / "tiny-synthetic").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--categories", "bottle,bottel"], "unknown categories ['bottel']; valid: all, bottle"),
        (["--all-categories", "--ablations", "full,no_brain"], "unknown ablations ['no_brain']"),
        ([], "say which categories"),
        (["--sweep", "no/such.yaml"], "cannot read sweep file"),
    ],
)
def test_bad_input_exits_2_with_the_reason(cli, capsys, tmp_path, argv, message):
    assert cli(["run", "--results", str(tmp_path), "--profile", "tiny", "--dry-run", *argv]) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_real_data_needs_a_data_root_but_a_dry_run_reads_none(cli, capsys, tmp_path):
    argv = ["run", "--results", str(tmp_path), "--profile", "tiny", "--categories", "bottle", "--dataset", "mvtec"]
    assert cli(argv) == 2  # refused before Ray starts
    assert "mvtec data needs --data-root" in capsys.readouterr().err.replace("\n", " ")
    assert cli([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "no --data-root given" in out and len(_table_lines(out)) == 1


VARIANTS_YAML = """
name: recipes
categories: [bottle, grid]
seeds: [0, 1]
profile: tiny
variants:
  base: {}
  fast: {lr: 0.01}
  other: {profile: smoke, steps: 3}
"""


def test_dry_run_of_a_sweep_with_variants_shows_them(cli, capsys, tmp_path):
    sweep = tmp_path / "recipes.yaml"
    sweep.write_text(VARIANTS_YAML)
    base = ["run", "--results", str(tmp_path / "res"), "--sweep", str(sweep), "--dry-run"]
    assert cli(base) == 0
    out = capsys.readouterr().out
    assert "sweep recipes: 12 jobs" in out
    assert "variants base (profile tiny); fast (profile tiny, lr=0.01); other (profile smoke, steps=3)" in out
    header = next(line for line in out.splitlines() if "job id" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "job id",
        "category",
        "seed",
        "ablation",
        "variant",
        "profile",
        "done?",
    ]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in _table_lines(out)]
    assert [(c[0].split("-s")[0], c[4], c[5]) for c in cells[:6]] == [
        ("bottle-full-base", "base", "tiny"),
        ("grid-full-base", "base", "tiny"),
        ("bottle-full-fast", "fast", "tiny"),
        ("grid-full-fast", "fast", "tiny"),
        ("bottle-full-other", "other", "smoke"),
        ("grid-full-other", "other", "smoke"),
    ]
    ids = {c[0] for c in cells}
    # --variants runs a subset; the jobs it keeps have the same ids.
    assert cli([*base, "--variants", "other,base"]) == 0
    out = capsys.readouterr().out
    picked = [[c.strip() for c in line.split("│")[1:-1]] for line in _table_lines(out)]
    assert "sweep recipes: 8 jobs" in out and {c[4] for c in picked} == {"other", "base"} and {c[0] for c in picked} <= ids
    # Without variants the table has no variant column.
    assert cli(["run", "--results", str(tmp_path / "res"), "--profile", "tiny", "--categories", "bottle", "--dry-run"]) == 0
    assert "variant" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "argv", "message"),
    [
        (VARIANTS_YAML, ["--variants", "base,slow"], "unknown variants ['slow']; valid: base, fast, other"),
        ("categories: [bottle]\nprofile: tiny\n", ["--variants", "base"], "the sweep defines no variants"),
        ("categories: [bottle]\nvariants: {'../up': {}}\n", [], "variant name '../up' is refused"),
        ("categories: [bottle]\nvariants: {a: {lrr: 1}}\n", [], "variant 'a'"),
    ],
)
def test_bad_variants_exit_2_with_the_reason(cli, capsys, tmp_path, text, argv, message):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(text)
    assert cli(["run", "--results", str(tmp_path / "res"), "--sweep", str(sweep), "--dry-run", *argv]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "res").exists()


@pytest.mark.slow
def test_a_sweep_with_variants_runs_and_its_summary_keeps_them_apart(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    sweep = tmp_path / "recipes.yaml"
    sweep.write_text(VARIANTS_YAML.replace("seeds: [0, 1]", "seeds: [0]"))
    argv = _run_argv(tmp_path / "res", mvtec_dirs("bottle", "grid"), "--sweep", str(sweep), "--variants", "base,other")
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "ran 4 job(s)" in out
    assert "recipes · MVTec AD · full · base" in out and "recipes · MVTec AD · full · other" in out
    rows = store.load_results(tmp_path / "res", "recipes")
    assert sorted(zip(rows["category"], rows["variant"], rows["profile"])) == [
        ("bottle", "base", "tiny"),
        ("bottle", "other", "smoke"),  # each row records its variant's base profile
        ("grid", "base", "tiny"),
        ("grid", "other", "smoke"),
    ]
    assert all(j.startswith(f"{c}-full-{v}-s0-") for j, c, v in zip(rows["job_id"], rows["category"], rows["variant"]))
    assert cli(argv) == 0 and "4 were done before" in capsys.readouterr().out  # resumes


def test_status_shows_the_variants_of_a_sweep(cli, capsys, tmp_path):
    from harness.sweep import dump_sweep, load_sweep

    sweep = tmp_path / "recipes.yaml"
    sweep.write_text(VARIANTS_YAML)
    store.save_spec(tmp_path / "res", "recipes", dump_sweep(load_sweep(sweep)))
    assert cli(["status", "--results", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "recipes" in line)
    assert "variants" in out and [c.strip() for c in row.split("│")[4:6]] == ["base, fast, other", "12"]


def test_default_profile_follows_the_cluster():
    spec = SweepSpec(categories=CATEGORIES)
    assert choose_profile(spec, 0)[0] == "smoke"
    assert choose_profile(spec, 2)[0] == "paper"
    assert choose_profile(spec.replace(profile="tiny"), 2) == ("tiny", "as asked")


def test_recipe_flags_reach_every_job_config():
    import argparse

    from harness.__main__ import build_parser
    from harness.run_flags import spec_and_options
    from harness.sweep import expand
    from memseg.cli_recipe import recipe_overrides

    args = build_parser().parse_args(
        ["run", "--categories", "bottle,grid", "--profile", "tiny", "--steps", "7", "--compile", "--texture-dir", "tex"]
    )
    assert isinstance(args, argparse.Namespace)
    overrides = recipe_overrides(args)
    assert overrides["compile"] is True and overrides["steps"] == 7
    configs = expand(spec_and_options(args)[0])
    assert [c.category for c in configs] == ["bottle", "grid"]
    assert all(c.compile and c.steps == 7 and c.texture_dir.endswith("/tex") for c in configs)
    plain = build_parser().parse_args(["run", "--categories", "bottle", "--profile", "tiny"])
    assert "compile" not in recipe_overrides(plain)
    assert not {"memory_size", "di_scale", "feature_scale", "foreground_mask"} & set(recipe_overrides(plain))


def test_category_setting_flags_override_the_table():
    from harness.__main__ import build_parser
    from harness.run_flags import spec_and_options
    from harness.sweep import expand
    from memseg.config import resolve

    args = build_parser().parse_args(
        [
            "run",
            "--categories",
            "screw,cable",
            "--profile",
            "smoke",
            "--memory-size",
            "12",
            "--di-scale",
            "10",
            "--feature-scale",
            "2",
            "--foreground-mask",
            "off",
        ]
    )
    for config in expand(spec_and_options(args)[0]):
        settings = resolve(config)
        assert (settings.memory_size, settings.di_scale, settings.feature_scale, settings.foreground_mask) == (
            12,
            10.0,
            2.0,
            False,
        )


def test_eval_resolution_reaches_every_job_from_the_flag_and_the_sweep_file(tmp_path):
    from harness.__main__ import build_parser
    from harness.run_flags import spec_and_options
    from harness.sweep import expand

    flag = build_parser().parse_args(["run", "--categories", "bottle", "--profile", "tiny", "--eval-resolution", "native"])
    assert [c.eval_resolution for c in expand(spec_and_options(flag)[0])] == ["native"]
    sweep = tmp_path / "native.yaml"
    sweep.write_text("categories: [bottle, grid]\nprofile: tiny\noverrides: {eval_resolution: native}\n")
    from_file = build_parser().parse_args(["run", "--sweep", str(sweep)])
    assert {c.eval_resolution for c in expand(spec_and_options(from_file)[0])} == {"native"}
    default = build_parser().parse_args(["run", "--categories", "bottle", "--profile", "tiny"])
    assert [c.eval_resolution for c in expand(spec_and_options(default)[0])] == ["model"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--categories", "bottle", "--eval-resolution", "official"])


@pytest.mark.slow
def test_log_to_sends_each_job_as_it_commits_and_the_end_names_where_to_look(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    """`--log-to tensorboard`: every finished job is in the tracker when the run ends (read back with
    TensorBoard's own reader), sent from the driver; the last lines give the report, curves and
    compare commands (two ablations)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = _run_argv(tmp_path / "res", mvtec_dirs("bottle"), "--categories", "bottle", "--ablations", "full,no_memory")
    argv[argv.index(f"{FAKES}:quick_job")] = f"{FAKES}:curves_job"
    assert cli([*argv, "--log-to", "tensorboard"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    rows = store.load_results(tmp_path / "res", "tiny-mvtec")
    assert len(rows) == 2 and (rows["curves_file"] != "").all()
    for job_id in rows["job_id"]:
        events = EventAccumulator(str(tmp_path / "res" / "tiny-mvtec" / "tensorboard" / job_id), size_guidance={"scalars": 0})
        events.Reload()
        assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5]
        assert [e.value for e in events.Scalars("validation/image_auroc")] == pytest.approx([0.75])
    assert "python -m harness report --name tiny-mvtec --results" in out and "--html" in out and "--curves" in out
    assert "python -m harness compare --name tiny-mvtec" in out and "--ablations full,no_memory" in out
    assert "--log-to tensorboard" in out


def test_log_to_a_tracker_that_is_not_installed_is_refused_before_anything_starts(cli, capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    assert cli(["run", "--results", str(tmp_path / "res"), "--categories", "bottle", "--log-to", "mlflow"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'memseg-bench[mlflow]'" in err and not (tmp_path / "res").exists()


def test_a_name_given_with_name_is_the_folder_whatever_the_recipe_flags(cli, capsys, tmp_path):
    """--name is the results folder as given; without it, recipe flags add a hash to the derived name."""
    base = ["run", "--results", str(tmp_path), "--profile", "tiny", "--categories", "bottle", "--dry-run"]
    assert cli([*base, "--name", "mine", "--steps", "3"]) == 0
    assert "sweep mine: 1 jobs" in capsys.readouterr().out
    assert cli([*base, "--steps", "3"]) == 0
    assert re.search(r"sweep tiny-synthetic-[0-9a-f]{6}: 1 jobs", capsys.readouterr().out)
