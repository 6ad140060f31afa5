"""The driver stopped from outside: SIGTERM (what `ray job stop`, a batch scheduler or a spot
interruption sends) is handled like Ctrl-C, and a job's checkpoint, written by the driver, lets the
same command resume the job where it was instead of at step 0; after SIGKILL, which no handler sees,
the same command re-runs no finished job and the dead driver's actors are gone with it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness import checkpoints, paths, store
from harness.sweep import SweepSpec, expand
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
def test_sigterm_then_sigkill_of_the_driver_each_rerun_of_the_same_command_redoes_only_what_was_not_kept(harness):
    """One sweep of three jobs (bottle, carpet, grid; one at a time; a checkpoint every 5 of 20 steps)
    stopped twice, each stop the kind a cluster deals out:

    1. SIGTERM (`ray job stop`, a batch scheduler, a spot interruption) while carpet holds at step 12:
       handled like Ctrl-C (exit 143, the jobs done and pending named), carpet's actor stopped, its
       step-10 checkpoint kept.
    2. The same command resumes carpet from step 10 (steps 11-20 run, 1-10 never again) and finishes
       it; then SIGKILL, which no handler sees, while grid runs: grid's actor dies with the driver.
    3. The same command again, beside a temp file a crash left mid-write (never read as a result):
       it runs grid alone; bottle and carpet ran once each, every job has one ok row, and no
       committed job's checkpoint is left."""
    cats = ("bottle", "carpet", "grid")
    for c in cats:
        (harness.data / c).mkdir(parents=True, exist_ok=True)
    argv = [
        "run", "--results", str(harness.results), "--name", "rel", "--profile", "tiny", "--steps", "20",
        "--dataset", "mvtec", "--data-root", str(harness.data), "--categories", ",".join(cats),
        "--job-fn", f"{FAKES}:checkpointing_job", "--data-check", f"{FAKES}:fake_check", "--checkpoint-every", "5",
        "--cpus-per-job", str(os.cpu_count()),
    ]  # fmt: skip  # one job at a time
    jobs = {job.split("-")[0]: job for job in _job_ids(harness, cats)}

    def starts(job: str) -> list[int]:
        return [int(first) for j, _pid, _node, first in _lines(harness, "start") if j == job]

    def at_step(job: str, step: int) -> bool:
        return any(j == job and int(s) >= step for j, _p, s in _lines(harness, "step"))

    # 1. SIGTERM while carpet holds at step 12 of 20 (its last checkpoint: step 10).
    first = harness.start(argv)
    harness.wait_for(lambda: harness.committed(), first)
    harness.gate.touch()
    carpet = jobs["carpet"]
    checkpoint = paths.checkpoint_path(harness.results, "rel", carpet)
    harness.wait_for(lambda: checkpoint.exists() and checkpoints.step_of(checkpoint.read_bytes()) >= 10, first)
    harness.wait_for(lambda: at_step(carpet, 12), first)
    running_pids = {int(pid) for job, pid, *_ in _lines(harness, "start") if job == carpet}
    harness.watch(first)
    os.kill(first.pid, signal.SIGTERM)  # the driver alone: it must stop its actors itself
    assert first.wait(timeout=60) == 143
    text = " ".join(harness.output(first)[1].split())
    assert harness.committed() == {jobs["bottle"]}
    assert f"terminated (SIGTERM): 1 of {len(cats)} job(s) done" in text and "2 pending" in text and carpet in text, text
    assert "1 pending job(s) resume from their checkpoint" in text
    assert _wait_gone(running_pids) == [], "the running job's actor outlived the SIGTERMed driver"
    assert checkpoints.step_of(checkpoint.read_bytes()) == 10  # the last one before the job stopped at step 12

    # 2. The same command: carpet resumes from step 10 and finishes; SIGKILL while grid holds.
    grid_gate = Path(f"{harness.gate}-grid")
    grid_gate.touch()
    harness.gate.unlink()
    second = harness.start(argv)
    harness.wait_for(lambda: at_step(jobs["grid"], 12), second)
    assert harness.committed() == {jobs["bottle"], carpet}
    grid_pids = {int(pid) for job, pid, *_ in _lines(harness, "start") if job == jobs["grid"]}
    harness.watch(second)
    os.kill(second.pid, signal.SIGKILL)
    second.wait()
    assert _wait_gone(grid_pids) == [], "a SIGKILLed driver's actor kept computing"
    assert starts(carpet) == [0, 10], "the resumed job did not start from its checkpoint"
    resumed_pid = next(pid for job, pid, _n, step in _lines(harness, "start") if job == carpet and step == "10")
    redone = sorted(int(step) for job, pid, step in _lines(harness, "step") if pid == resumed_pid)
    assert redone == list(range(11, 21))  # steps 1-10 were not run again

    # 3. The same command again, beside a temp file a crash left mid-write.
    grid_gate.unlink()
    (harness.results / "rel" / "jobs" / f".{jobs['grid']}.parquet.tmp-999").write_bytes(b"PAR1 half a file")
    third = harness.start(argv)
    assert third.wait(timeout=180) == 0, harness.output(third)
    out = " ".join(harness.output(third)[0].split())
    assert "ran 1 job(s)" in out and "2 were done before" in out, out
    rows = store.load_results(harness.results, "rel")
    assert sorted(rows["category"]) == sorted(cats) and (rows["status"] == "ok").all()  # one row per job
    assert len(starts(jobs["bottle"])) == 1 and len(starts(carpet)) == 2, "a finished job ran again"
    assert len(starts(jobs["grid"])) == 2
    assert not list((harness.results / "rel" / "checkpoints").glob("*.safetensors")), "a committed job's checkpoint was kept"


def _job_ids(harness: Harness, cats: tuple[str, ...]) -> list[str]:
    """The sweep's job ids, in the order it runs them."""
    spec = SweepSpec(categories=cats, profile="tiny", dataset="mvtec", data_root=str(harness.data), overrides={"steps": 20})
    return [c.job_id for c in expand(spec)]
