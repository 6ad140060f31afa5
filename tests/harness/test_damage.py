"""The damage matrix: every kind of file in a sweep folder (jobs, scores, curves, visuals,
checkpoints, sweep.yaml, .lock), every damage a careless or hostile user does to it (garbage bytes,
truncated, deleted, a stray copy under another name, a row whose job id is not its file name), and
every command that reads a sweep (status, report, report --html, report --curves, compare, export,
run --dry-run, run). Each answer is exit 0 or 2, never a traceback; no row is counted twice; a job
whose committed files are damaged is named, and `run` runs it again.

The sweep is built once (fake jobs with curves; bottle-full with pictures made from generated maps) and copied
per case; the commands run in this process, `run` on the session's Ray with a fake job."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from unittest import mock

import matplotlib.figure
import matplotlib.pyplot as plt
import pytest

from harness import paths, report_html, store, visuals_store
from harness.__main__ import main
from harness.sweep import SweepSpec, dump_sweep, expand
from memseg.revision import REVISION
from tests.harness.fakes import instant_curves_job
from tests.harness.test_report_html import fabricated_result

SWEEP = "hurt"
FAKE_JOB = "tests.harness.fakes:instant_curves_job"
SPEC = SweepSpec(
    name=SWEEP, categories=("bottle", "carpet", "grid"), ablations=("full", "no_memory"), profile="tiny", dataset="mvtec"
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/ with the sweep: every job committed but grid-full (bottle-full with pictures made
    from generated maps, all with curves and scores), which is pending with a checkpoint of its own;
    the sweep.yaml and the lock file a finished run leaves. A run of an undamaged copy runs grid-full
    alone."""
    root = tmp_path_factory.mktemp("damage")
    spec = SPEC.replace(data_root=str(root / "data"))
    results = root / "results"
    configs = expand(spec)
    grid = next(c for c in configs if c.category == "grid" and c.ablation == "full")
    for config in configs:
        if config == grid:
            continue
        result = instant_curves_job(config)
        if config.category == "bottle" and config.ablation == "full":
            result = dataclasses.replace(result, visuals=fabricated_result(config, 0).visuals)
        store.commit(results, store.Attempt(SWEEP, "tiny", recorded_at="t", wall_s=1.0), result)
    header = b'{"__metadata__": {"memseg_checkpoint": "{\\"step\\": 2, \\"revision\\": %d}"}}' % REVISION
    path = paths.checkpoint_path(results, SWEEP, grid.job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    store.save_spec(results, SWEEP, dump_sweep(spec))
    (results / SWEEP / ".lock").write_text("")
    (root / "sweep.yaml").write_text(dump_sweep(spec))
    (root / "data").mkdir()
    return root


def _jobs() -> dict[str, str]:
    return {f"{c.category}-{c.ablation}": c.job_id for c in expand(SPEC)}


BOTTLE = _jobs()["bottle-full"]
CARPET = _jobs()["carpet-full"]


def _target(results: Path, kind: str) -> Path:
    """The file (or folder) of `kind` that the damage hits."""
    sweep = results / SWEEP
    grid = _jobs()["grid-full"]
    return {
        "jobs": paths.job_path(results, SWEEP, BOTTLE),
        "scores": paths.scores_path(results, SWEEP, BOTTLE),
        "curves": paths.curves_path(results, SWEEP, BOTTLE),
        "visuals": paths.visuals_dir(results, SWEEP, BOTTLE) / visuals_store.CURVES_FILE,
        "checkpoints": paths.checkpoint_path(results, SWEEP, grid),
        "sweep.yaml": paths.spec_path(results, SWEEP),
        ".lock": sweep / ".lock",
    }[kind]


def _damage(results: Path, kind: str, damage: str) -> None:
    target = _target(results, kind)
    if damage == "garbage":
        target.write_bytes(b"\x00\xffnot what this file should hold\x89PNG" * 8)
    elif damage == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif damage == "deleted":
        if kind == "visuals":
            shutil.rmtree(target.parent)
        else:
            target.unlink()
    elif damage == "stray copy":
        if kind == "visuals":
            shutil.copytree(target.parent, target.parent.with_name("copy-of-bottle"))
        else:
            shutil.copy(target, target.with_name("copy-of-" + target.name.lstrip(".")))
    elif damage == "wrong job id":  # carpet's row saved under bottle's name: bottle's own row is gone
        shutil.copy(paths.job_path(results, SWEEP, CARPET), target)


DAMAGES = ("garbage", "truncated", "deleted", "stray copy")
CASES = [
    (kind, damage) for kind in ("jobs", "scores", "curves", "visuals", "checkpoints", "sweep.yaml", ".lock") for damage in DAMAGES
]
CASES.append(("jobs", "wrong job id"))
# A job of these (kind, damage) is not committed any more: it is named, and `run` runs it again.
DAMAGED_JOB = {("jobs", d) for d in ("garbage", "truncated", "deleted", "wrong job id")}
DAMAGED_JOB |= {(k, d) for k in ("scores", "curves") for d in ("garbage", "truncated", "deleted")}
NAMED = DAMAGED_JOB - {("jobs", "deleted")}  # a deleted row is a job never committed: pending, nothing to name


def _commands(root: Path, results: Path) -> list[tuple[str, list[str]]]:
    at = ["--results", str(results)]
    run = ["run", *at, "--sweep", str(root / "sweep.yaml"), "--data-root", str(root / "data"), "--data-check", ""]
    return [
        ("status", ["status", *at]),
        ("report", ["report", *at, "--name", SWEEP, "--markdown"]),
        ("report --html", ["report", *at, "--name", SWEEP, "--html", str(results.parent / "page.html")]),
        ("report --curves", ["report", *at, "--name", SWEEP, "--curves"]),
        ("compare", ["compare", *at, "--name", SWEEP, "--ablations", "full,no_memory"]),
        ("export --to tensorboard", ["export", SWEEP, "--to", "tensorboard", *at, "--dest", str(results.parent / "tb")]),
        ("run --dry-run", [*run, "--dry-run"]),
        ("run", [*run, "--job-fn", FAKE_JOB]),
    ]


def _runs_cells(markdown: str) -> list[str]:
    """The `runs` cell of every category row of the summary tables of `report --markdown`."""
    cells, in_summary = [], False
    for line in markdown.splitlines():
        if line.startswith("| category | runs |"):
            in_summary = True
        elif not line.strip():
            in_summary = False
        elif in_summary and line.startswith(("| bottle", "| carpet", "| grid")):
            cells.append(line.split("|")[2].strip())
    return cells


def _no_png(figure: matplotlib.figure.Figure) -> bytes:
    plt.close(figure)
    return b"\x89PNG\r\n\x1a\n"


def _counted_once(results: Path) -> None:
    rows = store.read_sweep(results, SWEEP).rows
    assert rows["job_id"].is_unique, rows["job_id"].tolist()


def _files(results: Path) -> dict[str, tuple[int, int]]:
    """Every file under results/ with its size and modification time: what a reader must leave as it was."""
    return {str(p.relative_to(results)): (p.stat().st_size, p.stat().st_mtime_ns) for p in results.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_every_damage_to_every_file_gets_exit_0_or_2_no_traceback_no_double_count(
    base: Path, ray_session, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    """`report --html` reads every file it reads, but makes no chart: matplotlib's axes, layout and
    drawing are most of its time and none of what this test is about (test_report_html.py draws them)."""
    monkeypatch.setattr(report_html, "_png", _no_png)
    monkeypatch.setattr(matplotlib.figure.Figure, "tight_layout", lambda self, *args, **kwargs: None)
    monkeypatch.setattr(matplotlib.figure.Figure, "add_subplot", lambda self, *args, **kwargs: mock.MagicMock())

    def asked(argv: list[str]) -> tuple[int, str, str]:
        code = main(argv)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    invocations = 0
    for n, (kind, damage) in enumerate(CASES):
        root = Path(shutil.copytree(base, tmp_path / f"case{n}"))
        results = root / "results"
        _damage(results, kind, damage)
        for name, argv in _commands(root, results):
            before = _files(results)
            code, out, err = asked(argv)
            invocations += 1
            where = f"{kind} / {damage} / {name}: exit {code}\n{out[-2000:]}\n{err[-2000:]}"
            assert code in (0, 2), where
            assert "Traceback" not in out + err and "this is a bug" not in err, where
            if name == "run":  # the one command that writes: each job committed once
                _counted_once(results)
            else:  # a reader leaves the sweep as it found it (so it cannot count a row twice in the store either)
                assert _files(results) == before, where
            if name == "report":  # one run per category and ablation in the summary tables: nothing counted twice
                assert set(_runs_cells(out)) <= {"1"}, where
            if (kind, damage) in NAMED and name in ("status", "report", "compare"):
                assert BOTTLE in err, where  # named, with what to do
            if (kind, damage) in NAMED and name == "run --dry-run":
                assert f"damaged {BOTTLE} runs again" in out or f"not counted {paths.job_path(results, SWEEP, BOTTLE)}" in out, (
                    where
                )
        read = store.read_sweep(results, SWEEP)  # after `run`: everything committed, nothing damaged
        assert not read.damaged and set(read.rows["job_id"]) == set(_jobs().values()), (kind, damage, read.notes())
        if (kind, damage) in DAMAGED_JOB:
            again = read.rows.set_index("job_id").loc[BOTTLE]
            assert again["recorded_at"] != "t", (kind, damage)  # run again by this run's fake job
        shutil.rmtree(root)
    assert invocations == len(CASES) * 8
