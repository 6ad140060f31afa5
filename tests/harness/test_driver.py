"""The Ray driver with fake jobs: concurrency across actor processes, resume, failures recorded,
fast failure on impossible resource requests, retries after a worker is killed, data preflight.
Plus the pure resource arithmetic, without Ray."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from datetime import datetime

import pytest

from harness import cluster, driver, preflight, store
from harness.cluster import JobRequest, NodeShape, NodeType, PreflightError
from harness.progress import JobFinished, JobProgressed, JobRetrying, JobStarted
from harness.sweep import SweepSpec, expand
from tests.harness.plans import sweep_plan

FAKES = "tests.harness.fakes"


def _configs(categories=("bottle", "carpet"), seeds=(0,), ablations=("full",), **overrides):
    return expand(
        SweepSpec(
            categories=tuple(categories), seeds=tuple(seeds), ablations=tuple(ablations), profile="tiny", overrides=overrides
        )
    )


def test_the_driver_takes_the_caller_s_statuses_and_reads_no_store(tmp_path, monkeypatch):
    """`harness run` reads the store once (harness.plan) and hands the answer down: given `to_run`,
    the driver does not read it again. All done: no Ray either."""

    def no_read(*_args, **_kwargs):
        raise AssertionError("the store was read again")

    monkeypatch.setattr(store, "job_states", no_read)
    configs = _configs()
    ids = tuple(c.job_id for c in configs)
    kept = store.ToRun(run=(), done=ids, failed=(), stale=(), revision=store.current_revision())
    plan = dataclasses.replace(sweep_plan(configs, "s", tmp_path, force=True), to_run=kept)  # force: no read
    outcome = driver.run_sweep(plan, job_fn=f"{FAKES}:quick_job")
    assert outcome.ran == () and outcome.done_before == ids and outcome.ok


# --- resource arithmetic (no Ray) ---------------------------------------------------------------

CPU_NODE = NodeShape("head", "head", cpus=4, gpus=0, is_head=True)
GPU_NODE = NodeShape("w1", "w1", cpus=16, gpus=2, is_head=False)


def test_default_request_takes_a_gpu_and_its_share_of_cpus():
    assert cluster.default_request([CPU_NODE, GPU_NODE]) == JobRequest(num_cpus=8, num_gpus=1)
    assert cluster.default_request([CPU_NODE, GPU_NODE], gpus_per_job=0.5) == JobRequest(num_cpus=4, num_gpus=0.5)
    assert cluster.default_request([CPU_NODE]) == JobRequest(num_cpus=1, num_gpus=0)
    # An autoscaler that can add GPU workers counts, though none is up yet.
    assert cluster.default_request([CPU_NODE], [NodeType("gpu", 4, 1, 8)]) == JobRequest(num_cpus=4, num_gpus=1)
    with pytest.raises(PreflightError, match="no CPU and no GPU"):
        cluster.default_request([CPU_NODE], cpus_per_job=0)


def test_check_fits_names_the_largest_node_and_the_flag():
    cluster.check_fits(JobRequest(8, 1), [CPU_NODE, GPU_NODE])
    with pytest.raises(PreflightError, match=r"asks for 3 GPU.*largest node has 2.*--gpus-per-job 2"):
        cluster.check_fits(JobRequest(1, 3), [CPU_NODE, GPU_NODE])
    with pytest.raises(PreflightError, match=r"asks for 1 GPU.*has 0.*--gpus-per-job 0"):
        cluster.check_fits(JobRequest(1, 1), [CPU_NODE])
    with pytest.raises(PreflightError, match=r"asks for 32 CPU.*--cpus-per-job 16"):
        cluster.check_fits(JobRequest(32, 1), [CPU_NODE, GPU_NODE])
    with pytest.raises(PreflightError, match="no single node has both"):
        cluster.check_fits(JobRequest(8, 1), [NodeShape("a", "a", 8, 0, True), NodeShape("b", "b", 2, 1, False)])
    cluster.check_fits(JobRequest(4, 1), [CPU_NODE], [NodeType("gpu", 4, 1, 8)])


def test_capacity_counts_slots_now_and_what_the_autoscaler_may_add():
    assert cluster.capacity(JobRequest(1, 0), [CPU_NODE, GPU_NODE]) == 20
    assert cluster.capacity(JobRequest(8, 1), [CPU_NODE, GPU_NODE]) == 2
    assert cluster.capacity(JobRequest(4, 1), [CPU_NODE], [NodeType("gpu", 4, 1, 8)]) == 8
    assert cluster.capacity(JobRequest(1, 0.5), [GPU_NODE]) == 4


def test_autoscaler_node_types_from_the_bootstrap_config(tmp_path):
    path = tmp_path / "ray_bootstrap_config.yaml"
    assert cluster.autoscaler_node_types(path) == []
    path.write_text(
        "head_node_type: head\navailable_node_types:\n"
        "  head: {resources: {CPU: 4}, max_workers: 0}\n"
        "  gpu: {resources: {CPU: 4, GPU: 1}, min_workers: 0, max_workers: 8}\n"
    )
    assert cluster.autoscaler_node_types(path) == [NodeType("gpu", 4, 1, 8)]


# --- with Ray (fake jobs) -------------------------------------------------------------------------


def _max_overlap(rows) -> int:
    """Most jobs whose [started_at, finished_at] intervals overlap (timestamps from the fakes)."""
    edges = []
    for r in rows.itertuples():
        edges += [(datetime.fromisoformat(r.started_at), 1), (datetime.fromisoformat(r.finished_at), -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.slow
def test_jobs_fail_alone_and_are_recorded(ray_session, tmp_path):
    configs = _configs(("bottle", "carpet", "grid"))
    outcome = driver.run_sweep(sweep_plan(configs, "s", tmp_path), job_fn=f"{FAKES}:picky_job")
    assert not outcome.ok
    assert sorted(outcome.succeeded) == sorted(c.job_id for c in configs if c.category != "carpet")
    ((job_id, error),) = outcome.failed
    assert job_id.startswith("carpet") and "FloatingPointError: loss became non-finite" in error
    rows = store.load_results(tmp_path, "s").set_index("category")
    assert list(rows.columns) == [c for c in store.JOB_SCHEMA.names if c != "category"]
    assert rows.loc["carpet", "status"] == "failed" and rows.loc["carpet", "attempts"] == 1  # no retry: deterministic
    assert "picky_job" in rows.loc["carpet", "traceback"]
    assert (rows.loc[["bottle", "grid"], "status"] == "ok").all()
    # A job function that returns the wrong type is a failure of that job, with the reason.
    outcome = driver.run_sweep(sweep_plan(configs[:1], "w", tmp_path), job_fn=f"{FAKES}:wrong_type_job")
    assert "expected memseg.result.JobResult" in outcome.failed[0][1]


@pytest.mark.slow
def test_more_gpus_than_any_node_fails_fast(ray_session, tmp_path):
    start = time.monotonic()
    with pytest.raises(PreflightError, match=r"each job asks for 8 GPU\(s\) but the largest node has 4"):
        driver.run_sweep(sweep_plan(_configs(), "s", tmp_path, gpus_per_job=8), job_fn=f"{FAKES}:quick_job")
    assert time.monotonic() - start < 10
    assert store.job_statuses(tmp_path, "s") == {}


@pytest.mark.slow
def test_bad_data_stops_the_sweep_before_any_job(ray_session, tmp_path, mvtec_dirs):
    root = mvtec_dirs("bottle")
    configs = [c.replace(dataset="mvtec", data_root=str(root)) for c in _configs(("bottle", "carpet", "grid"))]
    with pytest.raises(PreflightError) as err:
        driver.run_sweep(sweep_plan(configs, "s", tmp_path, data_check=f"{FAKES}:fake_check"), job_fn=f"{FAKES}:quick_job")
    assert "carpet: missing category folder" in str(err.value) and "grid: missing category folder" in str(err.value)
    assert store.job_statuses(tmp_path, "s") == {}
    with pytest.raises(PreflightError, match="does not import"):
        driver.run_sweep(sweep_plan(configs, "s", tmp_path), job_fn=f"{FAKES}:no_such_job")


@pytest.mark.slow
def test_a_killed_worker_is_retried_on_a_fresh_actor(ray_session, tmp_path):
    configs = _configs(("bottle", "carpet"), steps=30)  # sleepy_job: 30 x 50 ms
    victim = configs[0].job_id
    pids: dict[tuple[str, int], int] = {}
    killed, progress = [], []

    def on_event(event):
        if isinstance(event, JobStarted):
            pids[(event.job_id, event.attempt)] = event.pid
        if isinstance(event, JobProgressed):
            progress.append(event)
        if isinstance(event, JobProgressed) and event.job_id == victim and not killed:
            os.kill(pids[(victim, 1)], signal.SIGKILL)  # mid-run: it has reported progress
            killed.append(pids[(victim, 1)])

    outcome = driver.run_sweep(sweep_plan(configs, "s", tmp_path), job_fn=f"{FAKES}:sleepy_job", on_event=on_event)
    assert killed and outcome.ok and outcome.retries == 1
    # Progress streams from the running workers: steps rise, the loss comes along.
    steps = [e.progress.step for e in progress if e.job_id == configs[1].job_id]
    assert len(steps) > 1 and steps == sorted(steps) and all(e.progress.loss == 0.5 for e in progress)
    rows = store.load_results(tmp_path, "s").set_index("job_id")
    assert sorted(rows.index) == sorted(c.job_id for c in configs)  # exactly one result per job
    assert rows.loc[victim, "attempts"] == 2 and rows.loc[victim, "worker_pid"] != killed[0]
    assert sorted(p.name for p in (tmp_path / "s" / "jobs").iterdir()) == sorted(f"{c.job_id}.parquet" for c in configs)


@pytest.mark.slow
def test_retries_are_bounded(ray_session, tmp_path):
    configs = _configs(("bottle",), steps=40)
    retries = []

    def on_event(event):
        if isinstance(event, JobStarted):
            os.kill(event.pid, signal.SIGKILL)  # every attempt dies
        if isinstance(event, JobRetrying):
            retries.append(event)

    outcome = driver.run_sweep(sweep_plan(configs, "s", tmp_path, max_retries=1), job_fn=f"{FAKES}:sleepy_job", on_event=on_event)
    assert len(retries) == 1 and not outcome.ok
    (row,) = store.load_results(tmp_path, "s").itertuples()
    assert row.status == "failed" and row.attempts == 2 and "worker died 2 time(s)" in row.error


@pytest.mark.slow
def test_sweep_runs_actors_concurrently_then_resumes(ray_session, tmp_path):
    configs = _configs(("bottle", "carpet", "grid"), seeds=(0, 1), ablations=("full", "no_memory"))
    assert len(configs) == 12
    finished = []
    outcome = driver.run_sweep(
        sweep_plan(configs, "s", tmp_path),
        job_fn=f"{FAKES}:quick_job",
        on_event=lambda e: finished.append(e) if isinstance(e, JobFinished) else None,
    )
    assert outcome.ok and len(outcome.succeeded) == 12 and len(finished) == 12
    assert outcome.request == JobRequest(num_cpus=1, num_gpus=1) and outcome.max_running > 1
    rows = store.load_results(tmp_path, "s")
    assert len(rows) == 12 and len(list((tmp_path / "s" / "jobs").glob("*.parquet"))) == 12
    assert rows["worker_pid"].nunique() > 1 and _max_overlap(rows) > 1
    again = driver.run_sweep(sweep_plan(configs, "s", tmp_path), job_fn=f"{FAKES}:quick_job")
    assert again.ran == () and len(again.done_before) == 12 and again.ok


@pytest.mark.slow
def test_an_interrupted_sweep_leaves_no_actor_and_resumes(ray_session, tmp_path):
    """Ctrl-C (here raised from the event callback) kills the running actors; finished jobs stay
    committed and the next run does only the rest."""
    configs = _configs(("bottle", "carpet", "grid"), steps=40)
    pids = []

    def on_event(event):
        if isinstance(event, JobStarted):
            pids.append(event.pid)
        if isinstance(event, JobFinished):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        driver.run_sweep(sweep_plan(configs, "s", tmp_path, cpus_per_job=4), job_fn=f"{FAKES}:sleepy_job", on_event=on_event)
    done = store.job_statuses(tmp_path, "s")
    assert len(done) == 1 and len(pids) == 1  # one at a time (4 CPUs per job)

    killed = []

    def record(event):
        if isinstance(event, JobStarted) and not killed:
            killed.append(event.pid)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        driver.run_sweep(sweep_plan(configs, "s", tmp_path), job_fn=f"{FAKES}:sleepy_job", on_event=record)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(killed[0]):
        time.sleep(0.1)
    assert not _alive(killed[0]), "the interrupted job's actor process is still running"

    again = driver.run_sweep(sweep_plan(configs, "s", tmp_path), job_fn=f"{FAKES}:quick_job")
    assert again.ok and len(again.ran) == 2 and set(again.done_before) == set(done)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_on_a_cluster_the_data_is_checked_by_tasks_on_job_nodes(ray_session, tmp_path, mvtec_dirs):
    """When the driver is not on the job nodes, the check runs as a Ray task pinned to each node
    that can host a job (or, with none up yet, as a job-shaped task the autoscaler would serve)."""
    import ray

    (real,) = cluster.cluster_nodes()
    remote_node = NodeShape(real.node_id, "not-this-machine", real.cpus, real.gpus, is_head=False)
    root = mvtec_dirs("bottle")
    configs = [c.replace(dataset="mvtec", data_root=str(root)) for c in _configs(("bottle", "carpet"))]
    notes = []
    with pytest.raises(PreflightError, match=r"(?s)where the jobs run:\non node .*carpet: missing category folder"):
        preflight.preflight_data(configs, f"{FAKES}:fake_check", JobRequest(1, 1), [remote_node], None, notes.append)
    assert "1 node(s) that can run jobs" in notes[0].message
    preflight.preflight_data(configs[:1], f"{FAKES}:fake_check", JobRequest(1, 1), [remote_node], None, notes.append)
    tiny_node = NodeShape(real.node_id, "not-this-machine", 4, 0, is_head=True)  # cannot hold a 1-GPU job
    preflight.preflight_data(configs[:1], f"{FAKES}:fake_check", JobRequest(1, 1), [tiny_node], None, notes.append)
    assert "first worker the autoscaler starts" in notes[-1].message
    deadline = time.monotonic() + 10  # the resource view catches up asynchronously
    while ray.available_resources().get("GPU") != 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("GPU") == 4  # nothing left holding resources
