"""Preemption: SIGTERM to the driver (what `ray job stop`, a batch scheduler or a spot interruption
sends) is handled like Ctrl-C, and a job's checkpoint, written by the driver, lets the same command
resume the job where it was instead of at step 0."""

from __future__ import annotations

import os
import signal

import pytest

from harness import checkpoints, paths, store
from tests.harness.test_reliability import FAKES, Harness, _wait_gone


def _lines(harness: Harness, kind: str) -> list[list[str]]:
    if not harness.log.exists():
        return []
    return [line.split()[1:] for line in harness.log.read_text().splitlines() if line.startswith(kind + " ")]


@pytest.fixture
def harness(tmp_path):
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.cleanup()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_stops_like_ctrl_c_and_the_same_command_resumes_from_the_checkpoint(harness):
    cats = ("bottle", "carpet", "grid")
    for c in cats:
        (harness.data / c).mkdir(parents=True, exist_ok=True)
    argv = [
        "run",
        "--results",
        str(harness.results),
        "--name",
        "rel",
        "--profile",
        "tiny",
        "--steps",
        "20",
        "--dataset",
        "mvtec",
        "--data-root",
        str(harness.data),
        "--categories",
        ",".join(cats),
        "--job-fn",
        f"{FAKES}:checkpointing_job",
        "--data-check",
        f"{FAKES}:fake_check",
        "--checkpoint-every",
        "5",
        "--cpus-per-job",
        str(os.cpu_count()),
    ]  # one job at a time
    first = harness.start(argv)
    harness.wait_for(lambda: harness.committed(), first)
    harness.gate.touch()  # the next job holds at step 12 of 20; its last checkpoint is at step 10

    def held_with_checkpoint() -> str | None:
        running = [job for job, *_ in _lines(harness, "start") if job not in harness.committed()]
        files = {j: paths.checkpoint_path(harness.results, "rel", j) for j in running}
        return next((j for j, p in files.items() if p.exists() and checkpoints.step_of(p.read_bytes()) >= 10), None)

    harness.wait_for(held_with_checkpoint, first)
    victim = held_with_checkpoint()
    harness.wait_for(lambda: [s for j, _p, s in _lines(harness, "step") if j == victim and s == "12"], first)
    running_pids = {int(pid) for job, pid, *_ in _lines(harness, "start") if job == victim}
    harness.watch(first)
    os.kill(first.pid, signal.SIGTERM)  # the driver alone: it must stop its actors itself
    assert first.wait(timeout=60) == 143
    _, err = harness.output(first)
    text = " ".join(err.split())
    finished = harness.committed()
    assert f"terminated (SIGTERM): {len(finished)} of {len(cats)} job(s) done" in text, err
    assert f"{len(cats) - len(finished)} pending" in text and victim in text
    assert "1 pending job(s) resume from their checkpoint" in text
    assert _wait_gone(running_pids) == [], "the running job's actor outlived the SIGTERMed driver"
    saved_step = checkpoints.step_of(paths.checkpoint_path(harness.results, "rel", victim).read_bytes())
    assert saved_step == 10  # kept for the resume: the last one before the job stopped at step 12

    harness.gate.unlink()
    second = harness.start(argv)  # the same command
    assert second.wait(timeout=180) == 0, harness.output(second)
    out, _ = harness.output(second)
    assert f"ran {len(cats) - len(finished)} job(s)" in " ".join(out.split())
    rows = store.load_results(harness.results, "rel")
    assert sorted(rows["category"]) == sorted(cats) and (rows["status"] == "ok").all()  # one row per job
    starts = {}
    for job, _pid, _node, first_step in _lines(harness, "start"):
        starts.setdefault(job, []).append(int(first_step))
    assert starts[victim] == [0, saved_step], "the resumed job did not start from its checkpoint"
    assert all(len(starts[j]) == 1 for j in finished), "a finished job ran again"
    resumed_pid = next(pid for job, pid, _n, step in _lines(harness, "start") if job == victim and int(step) == saved_step)
    redone = sorted(int(step) for job, pid, step in _lines(harness, "step") if pid == resumed_pid)
    assert redone == list(range(11, 21))  # steps 1-10 were not run again; 11 and 12 were (after the checkpoint)
    assert not list((harness.results / "rel" / "checkpoints").glob("*.safetensors")), "a committed job's checkpoint was kept"
