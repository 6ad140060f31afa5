"""The views read a sweep once and agree on one count: `status` and `run --dry-run` count the same
done, failed, pending and other-revision jobs after a revision bump; a live tracker reads each
committed row once; `report --curves --markdown` prints Markdown."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from harness import store
from harness.progress import JobFinished
from harness.sweep import SweepSpec, dump_sweep, expand
from harness.trackers import follow
from tests.harness.fakes import fake_result

SWEEP = "counted"


def _commit(results: Path, configs, revision: int | None = None, failed: tuple[str, ...] = ()) -> None:
    for config in configs:
        how = store.Attempt(SWEEP, "tiny", recorded_at="t", wall_s=1.0)
        if config.category in failed:
            store.commit_failure(results, how, config, "RuntimeError: boom")
        else:
            result = fake_result(config, "t")
            if revision is not None:
                result = dataclasses.replace(result, environment={**result.environment, "revision": str(revision)})
            store.commit(results, how, result)


def _status_counts(out: str) -> tuple[int, ...]:
    """jobs, done, failed, pending, other revision of the status table's row of SWEEP."""
    line = next(line for line in out.splitlines() if SWEEP in line)
    cells = [c.strip() for c in line.strip("│┃ ").split("│")]
    return tuple(int(c) for c in cells[3:8])


def test_status_and_the_dry_run_count_alike_after_a_revision_bump(cli, capsys, tmp_path, monkeypatch):
    spec = SweepSpec(name=SWEEP, categories=("bottle", "carpet", "grid", "wood"), profile="tiny", dataset="synthetic")
    configs = expand(spec)
    results = tmp_path / "res"
    current = store.current_revision()
    _commit(results, configs[:2], revision=current - 1)  # bottle, carpet: done at the revision before
    _commit(results, configs[2:3], failed=("grid",))  # grid: failed at this revision; wood: never ran
    store.save_spec(results, SWEEP, dump_sweep(spec))
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(yaml.safe_dump({**yaml.safe_load(dump_sweep(spec)), "name": SWEEP}))

    assert cli(["status", "--results", str(results)]) == 0
    jobs, done, failed, pending, stale = _status_counts(capsys.readouterr().out)
    assert cli(["run", "--results", str(results), "--sweep", str(sweep_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    marks = re.findall(r"│ (yes|no|failed|revision \d+: re-run)\s+│\s*$", out, flags=re.M)
    assert (jobs, done, failed, pending, stale) == (4, 0, 1, 1, 2)
    assert marks.count("yes") == done and marks.count("failed") == failed and marks.count("no") == pending
    assert sum(m.endswith("re-run") for m in marks) == stale
    assert f"2 done at revision {current - 1}, re-run at revision {current}" in out

    # Bump the code's revision: the failure of the revision before is now stale too, and both views agree again.
    monkeypatch.setattr(store, "current_revision", lambda: current + 1)
    assert cli(["status", "--results", str(results)]) == 0
    assert _status_counts(capsys.readouterr().out) == (4, 0, 0, 1, 3)
    assert cli(["run", "--results", str(results), "--sweep", str(sweep_file), "--dry-run"]) == 0
    marks = re.findall(r"│ (yes|no|failed|revision \d+: re-run)\s+│\s*$", capsys.readouterr().out, flags=re.M)
    assert sum(m.endswith("re-run") for m in marks) == 3 and marks.count("no") == 1


def test_a_live_tracker_reads_each_committed_row_once(tmp_path, monkeypatch):
    """200 jobs finish one after the other; the follower reads each one's row file once (before:
    the whole sweep at every job, 200 x 200 reads). The tracker itself is a stub: reads are counted."""
    spec = SweepSpec(name=SWEEP, categories=("bottle",), seeds=tuple(range(200)), profile="tiny")
    configs = expand(spec)
    reads: dict[str, int] = {}
    real_read = store._read

    def counting_read(path: Path, schema):
        reads[path.name] = reads.get(path.name, 0) + 1
        return real_read(path, schema)

    monkeypatch.setattr(store, "_read", counting_read)
    monkeypatch.setattr(follow, "check_installed", lambda tracker: None)
    monkeypatch.setattr(follow, "default_dest", lambda tracker, results, sweep: str(tmp_path / "dest"))
    sent: list[str] = []
    monkeypatch.setattr(
        follow, "export_job", lambda tracker, row, curves, pictures, dest: sent.append(row["job_id"]) or row["job_id"]
    )
    follower = follow.Follower("tensorboard", tmp_path, SWEEP, warn=pytest.fail)
    for config in configs:
        _commit(tmp_path, [config])
        follower.on_event(JobFinished(config.job_id, store.STATUS_OK, "", 1, 1.0))
    assert sent == [c.job_id for c in configs]
    job_reads = {name: n for name, n in reads.items() if not name.startswith(".")}
    assert len(job_reads) == 200 and set(job_reads.values()) == {1}


def test_a_sweep_is_named_by_name_and_the_old_sweep_flag_still_works_with_a_deprecation_line(cli, capsys, tmp_path):
    spec = SweepSpec(name=SWEEP, categories=("bottle",), profile="tiny")
    _commit(tmp_path, expand(spec))
    assert cli(["status", "--results", str(tmp_path), "--name", SWEEP]) == 0
    captured = capsys.readouterr()
    assert SWEEP in captured.out and "deprecated" not in captured.err
    for command in ("status", "report"):
        assert cli([command, "--results", str(tmp_path), "--sweep", SWEEP]) == 0
        captured = capsys.readouterr()
        assert SWEEP in captured.out and f"deprecated: --sweep {SWEEP} names a sweep here; say --name {SWEEP}" in captured.err
    assert cli(["report", "--results", str(tmp_path), "--name", "nosuch"]) == 2
    assert "error: no sweep 'nosuch' under" in capsys.readouterr().err


def test_every_expected_failure_is_a_user_error_with_its_line_and_exit_2():
    """The harness's own refusals go the one way a UserError goes (memseg.cli_errors.run_command)."""
    from harness.cluster import PreflightError
    from harness.compare import ProtocolMismatch
    from harness.lock import LockHeld
    from harness.revisions import MixedRevisions
    from memseg.cli_errors import UserError, render, run_command

    for kind in (PreflightError, LockHeld, MixedRevisions, ProtocolMismatch):
        assert issubclass(kind, UserError), kind

        def fail(_args, kind=kind):
            raise kind("what went wrong")

        assert run_command(fail, argparse.Namespace()) == 2
    assert render(PreflightError("no node has a GPU")) == "preflight failed, no job started: no node has a GPU"
