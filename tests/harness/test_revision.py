"""Results know which code made them: every row and checkpoint records the revision,
one skip rule re-runs results of another revision unless accepted, and no view averages rows of
two revisions. Nothing here hard-codes a revision: `REVISION - 1` is "the revision before"."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from harness import checkpoints, cluster, paths, preflight, revisions, store
from harness.preflight import DataCheck, NodeDataReport
from harness.progress import Note
from memseg import provenance
from memseg import revision as code_revision
from memseg.checkpoint import TrainCheckpoint
from memseg.config import JobConfig
from memseg.job import check_resume
from memseg.revision import REVISION
from tests.harness.fakes import fake_result
from tests.harness.test_cli_run import _run_argv, _table_lines
from tests.harness.test_compare import main, make_rows, write

OLD = REVISION - 1


def _row(category: str = "bottle", seed: int = 0, as_revision: int | None = None, **env: str) -> dict:
    result = fake_result(JobConfig(category=category, seed=seed, image_size=64, steps=4), "2026-01-01T00:00:00+00:00")
    if env:
        result = result.__class__(**{**result.__dict__, "environment": {**result.environment, **env}})
    row = store.row_from_result(store.Attempt("sw", "tiny", attempts=1, worker=None, recorded_at="t", wall_s=1.0), result)
    return row if as_revision is None else {**row, "revision": as_revision}


def test_a_row_records_the_workers_revision_git_state_and_package_version(tmp_path):
    row = _row(git_dirty="true", package_version="9.9", git_sha="abc")
    assert (row["revision"], row["git_dirty"], row["package_version"], row["git_sha"]) == (REVISION, True, "9.9", "abc")
    assert _row(**{"revision": str(OLD), "git_dirty": "false"})["revision"] == OLD  # the worker's, not the driver's
    assert _row()["git_dirty"] is None  # no git state recorded: unknown, not clean
    failed = store.row_from_failure(store.Attempt("sw", "tiny", attempts=1, recorded_at="t"), JobConfig(category="bottle"), "x")
    assert failed["revision"] == REVISION
    store.write_job(tmp_path, _row(git_dirty="true"))
    rows = store.load_results(tmp_path, "sw")
    assert rows["revision"].tolist() == [REVISION] and rows["git_dirty"].tolist() == [True]


def test_the_job_environment_names_the_code(monkeypatch):
    identity = provenance.code_identity()
    assert identity["revision"] == str(REVISION) and identity["package_version"]
    assert identity["git_dirty"] in ("true", "false", "")
    assert (identity["git_dirty"] == "") == (identity["git_sha"] == "")
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", provenance.Path("/"))  # as installed from a wheel: no checkout
    outside = provenance.code_identity()
    assert outside["git_sha"] == "" and outside["git_dirty"] == "" and outside["package_version"] == identity["package_version"]


def test_rows_without_a_revision_column_read_as_the_legacy_revision(tmp_path):
    path = store.write_job(tmp_path, _row())
    table = pq.read_table(path)
    pq.write_table(table.drop(["revision", "git_dirty", "package_version"]), path)  # as written before revisions were recorded
    assert store.load_results(tmp_path, "sw")["revision"].tolist() == [code_revision.LEGACY_REVISION]
    assert store.job_states(tmp_path, "sw") == {_row()["job_id"]: store.JobState("ok", code_revision.LEGACY_REVISION)}


def test_the_one_skip_rule():
    states = {
        "ok-now": store.JobState("ok", REVISION),
        "failed-now": store.JobState("failed", REVISION),
        "ok-old": store.JobState("ok", OLD),
        "failed-old": store.JobState("failed", OLD),
    }
    ids = ["new", *states]
    plain = store.to_run(ids, states, revision=REVISION)
    assert plain.run == ("new", "ok-old", "failed-old") and plain.done == ("ok-now",) and plain.failed == ("failed-now",)
    assert plain.stale == (("ok-old", OLD), ("failed-old", OLD)) and plain.stale_by_revision() == {OLD: 2}
    assert plain.stale_failed == ("failed-old",)
    assert plain.describe_stale() == (
        f"1 done at revision {OLD}, 1 failed at revision {OLD}, re-run at revision {REVISION} (--accept-revision {OLD} keeps them)"
    )
    kept = store.to_run(ids, states, accept_revisions=[OLD], revision=REVISION)
    assert kept.run == ("new",) and kept.done == ("ok-now", "ok-old") and kept.failed == ("failed-now", "failed-old")
    assert kept.stale == () and kept.describe_stale() == ""
    retried = store.to_run(ids, states, retry_failed=True, revision=REVISION)
    assert retried.run == ("new", "failed-now", "ok-old", "failed-old")
    assert store.to_run(ids, states, force=True, revision=REVISION).run == tuple(ids)


def test_a_checkpoint_of_another_revision_is_not_resumed(tmp_path, monkeypatch):
    blob = TrainCheckpoint("j", 5, {"c": torch.zeros(1)}, {"train_s": 1.0})
    assert blob.revision == REVISION and TrainCheckpoint.from_bytes(blob.to_bytes()).revision == REVISION
    path = paths.checkpoint_path(tmp_path, "sw", "j")
    checkpoints.write(path, blob.to_bytes())
    assert checkpoints.load_plan(tmp_path, "sw", "j", every=5)[1] == 5
    monkeypatch.setattr(code_revision, "REVISION", REVISION + 1)  # the code moved on
    notes: list = []
    keeper = checkpoints.Keeper(tmp_path, "sw", 5, notes.append)
    assert keeper.plan("j") == (checkpoints.CheckpointPlan(5), 0)  # from scratch
    (note,) = notes
    assert isinstance(note, Note) and f"written at revision {REVISION}, this code is revision {REVISION + 1}" in note.message
    assert "trains from scratch" in note.message
    config = JobConfig(category="bottle", steps=10)
    with pytest.raises(ValueError, match=f"revision {REVISION}.*revision {REVISION + 1}"):
        check_resume(TrainCheckpoint(config.job_id, 5, {}, {}, revision=REVISION), config)


def test_views_refuse_mixed_revisions_or_split_them():
    rows = pd.DataFrame({"revision": [OLD, OLD, REVISION], "git_dirty": [None, False, True], "git_sha": ["", "a", "b" * 40]})
    with pytest.raises(revisions.MixedRevisions, match=f"revision {OLD}: 2 rows, revision {REVISION}: 1 row"):
        revisions.split(rows)
    groups = revisions.split(rows, by_revision=True)
    assert [(r, len(g)) for r, g in groups] == [(OLD, 2), (REVISION, 1)]
    assert revisions.split(rows.iloc[:2])[0][0] == OLD
    assert (
        revisions.dirty_warning(rows)
        == f"1 of 3 result(s) came from a checkout with uncommitted changes (on top of {'b' * 10}): their code is not in any commit"
    )
    assert revisions.dirty_warning(rows.iloc[:2]) == ""


@pytest.mark.slow
def test_a_sweep_of_the_revision_before_is_rerun_unless_accepted(ray_session, cli, capsys, tmp_path, mvtec_dirs, monkeypatch):
    results, data = tmp_path / "res", mvtec_dirs("bottle", "carpet")
    argv = _run_argv(results, data, "--categories", "bottle,carpet", "--name", "sw")
    monkeypatch.setattr(code_revision, "REVISION", OLD)  # the driver of the code before: fakes record no revision
    assert cli(argv) == 0
    monkeypatch.setattr(code_revision, "REVISION", REVISION)
    assert set(store.load_results(results, "sw")["revision"]) == {OLD}
    old_ids = sorted(store.job_statuses(results, "sw"))
    capsys.readouterr()

    assert cli([*argv, "--accept-revision", str(OLD)]) == 0  # kept: nothing runs
    out = capsys.readouterr().out
    assert "ran 0 job(s)" in out and "2 were done before" in out and f"revision {REVISION} (docs/results.md" in out

    grown = _run_argv(results, mvtec_dirs("bottle", "carpet", "grid"), "--categories", "bottle,carpet,grid", "--name", "sw")
    assert cli([*grown, "--accept-revision", str(OLD)]) == 0  # grid runs at this revision, the rest is kept
    out = capsys.readouterr().out
    assert "ran 1 job(s)" in out and f"sw · revision {OLD}" in out and f"sw · revision {REVISION}" in out
    old_part, new_part = out.split(f"sw · revision {REVISION}", 1)
    assert "grid" not in old_part.split(f"sw · revision {OLD}", 1)[1] and "bottle" not in new_part.split("ran 1 job(s)")[0]
    for job_id in set(store.job_statuses(results, "sw")) - set(old_ids):
        (results / "sw" / "jobs" / f"{job_id}.parquet").unlink()  # back to the two old results

    assert cli([*argv, "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"2 done at revision {OLD}, re-run at revision {REVISION} (--accept-revision {OLD} keeps them)" in out
    assert out.count(f"revision {OLD}: re-run") == 2

    assert cli(argv) == 0  # re-run at this revision
    out = capsys.readouterr().out
    assert f"2 done at revision {OLD}, re-run at revision {REVISION}" in " ".join(out.split()) and "ran 2 job(s)" in out
    rows = store.load_results(results, "sw")
    assert sorted(rows["job_id"]) == old_ids and set(rows["revision"]) == {REVISION}  # same ids, new rows
    assert "· revision" not in out  # one revision: the tables as always, none per revision
    assert {line.split("│")[1].strip() for line in _table_lines(out)} >= {"bottle", "carpet", "average"}


def test_report_and_status_refuse_or_split_mixed_revisions(cli, capsys, tmp_path):
    results = tmp_path / "res"
    store.write_job(results, _row("bottle", 0, as_revision=OLD))
    store.write_job(results, _row("bottle", 1, as_revision=REVISION))
    store.write_job(results, _row("carpet", 0, as_revision=REVISION, git_dirty="true"))
    for flags in ([], ["--markdown"], ["--html"]):
        assert cli(["report", "--results", str(results), *flags]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"revision {OLD}: 1 row, revision {REVISION}: 2 rows" in err and "--by-revision" in err
        assert "Traceback" not in err
    assert not (results / "sw" / "report.html").exists()  # refused before writing

    assert cli(["report", "--results", str(results), "--markdown", "--by-revision"]) == 0
    out = capsys.readouterr().out
    assert f"### sw · revision {OLD} · " in out and f"### sw · revision {REVISION} · " in out
    assert out.count("came from a checkout with uncommitted changes") == 1
    old_table = out.split(f"### sw · revision {REVISION}")[0]
    assert "carpet" not in old_table  # each revision's rows alone

    assert cli(["report", "--results", str(results), "--by-revision", "--html"]) == 0
    capsys.readouterr()
    pages = sorted(p.name for p in (results / "sw").glob("report*.html"))
    assert pages == [f"report-revision-{OLD}.html", f"report-revision-{REVISION}.html"]
    assert "carpet" not in (results / "sw" / f"report-revision-{OLD}.html").read_text()

    assert cli(["status", "--results", str(results)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{OLD}: 1, {REVISION}: 2" in out


def test_the_summary_warns_once_about_dirty_rows(cli, capsys, tmp_path):
    results = tmp_path / "res"
    store.write_job(results, _row("bottle", 0, git_dirty="false"))
    assert cli(["report", "--results", str(results)]) == 0
    assert "uncommitted" not in capsys.readouterr().out
    store.write_job(results, _row("bottle", 1, git_dirty="true"))
    assert cli(["report", "--results", str(results)]) == 0
    assert " ".join(capsys.readouterr().out.split()).count("1 of 2 result(s) came from a checkout with uncommitted changes") == 1


def test_compare_refuses_a_sweep_of_two_revisions_or_compares_each(tmp_path, capsys):
    rows = make_rows(-2.0, categories=("bottle", "carpet"), seeds=(0, 1, 2), sweep="s")
    write(tmp_path, rows.assign(revision=[OLD if s == 0 else REVISION for s in rows["seed"]]))
    argv = ["compare", "--results", str(tmp_path), "--name", "s"]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"revision {OLD}: 4 rows, revision {REVISION}: 8 rows" in err and "--by-revision" in err
    assert main([*argv, "--by-revision", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.count("### no_memory vs full: overall") == 2
    assert out.index(f"## s · revision {OLD}") < out.index(f"## s · revision {REVISION}")
    assert main([*argv, "--by-revision", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data) == [f"revision {OLD}", f"revision {REVISION}"]
    assert len(data[f"revision {OLD}"]["comparisons"][0]["pairs"]) == 2  # bottle and carpet at seed 0
    assert len(data[f"revision {REVISION}"]["comparisons"][0]["pairs"]) == 4

    # Two sweeps may each be of its own revision (a gate compares the code before and after) ...
    base = make_rows(0.0, categories=("bottle",), seeds=(0, 1), ablations=("full", "no_memory"), sweep="before")
    write(tmp_path, base[base["ablation"] == "full"].assign(revision=OLD))
    write(tmp_path, base[base["ablation"] == "full"].assign(sweep="after", revision=REVISION))
    two = ["compare", "--results", str(tmp_path), "--baseline", "before", "--candidate", "after"]
    assert main(two) == 0
    capsys.readouterr()
    # ... but not a side that mixes two.
    assert main(["compare", "--results", str(tmp_path), "--baseline", "s", "--candidate", "after"]) == 2
    assert "the baseline sweep 's' hold rows of 2 revisions" in " ".join(capsys.readouterr().err.split())


def test_revision_differences_name_every_node_and_the_driver():
    check = DataCheck("h", (), ())
    same = [NodeDataReport("node-a", check, {}, REVISION), NodeDataReport("node-b", check, {}, REVISION)]
    assert preflight.revision_differences(same, REVISION) == ""
    assert f"this driver on {socket.gethostname()}: revision {OLD}" in preflight.revision_differences(same, OLD)
    differ = preflight.revision_differences([same[0], replace(same[1], revision=OLD)], REVISION)
    assert f"on node node-a: revision {REVISION}" in differ and f"on node node-b: revision {OLD}" in differ


@pytest.mark.slow
def test_a_cluster_whose_nodes_run_two_revisions_is_refused(ray_session, cli, capsys, tmp_path, mvtec_dirs, monkeypatch):
    """Two logical nodes (the one local node, shown twice): each answers the preflight's task, and
    node B's answer is made that of an older checkout."""
    (real,) = cluster.cluster_nodes()
    nodes = (replace(real, hostname="host-a"), replace(real, hostname="host-b", is_head=False))
    monkeypatch.setattr(cluster, "discover", lambda *a, **k: cluster.Cluster(nodes))
    asked = preflight._check_on_cluster

    def node_b_is_older(*args, **kwargs):
        first, second = asked(*args, **kwargs)  # the real tasks, one per node
        assert first.revision == second.revision == REVISION
        return [replace(first, node="node-a"), replace(second, node="node-b", revision=OLD)]

    monkeypatch.setattr(preflight, "_check_on_cluster", node_b_is_older)
    results = tmp_path / "res"
    code = cli(_run_argv(results, mvtec_dirs("bottle"), "--categories", "bottle", "--name", "sw", "--gpus-per-job", "1"))
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "preflight failed, no job started" in err and "different revisions of memseg" in err
    assert f"on node node-a: revision {REVISION}" in err and f"on node node-b: revision {OLD}" in err
    assert store.job_statuses(results, "sw") == {}


def test_rows_of_a_newer_revision_are_called_newer_never_old():
    rows = pd.DataFrame({"revision": [REVISION, 99]})
    with pytest.raises(revisions.MixedRevisions) as refused:
        revisions.split(rows)
    message = str(refused.value)
    assert f"revision 99 (newer than this code's {REVISION}): 1 row" in message
    assert "old" not in message.replace("hold", "")
