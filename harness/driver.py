"""The Ray driver: preflight (resources, data), one actor per job, a `ray.wait` loop that persists
each result as it arrives, progress polled from the actors, bounded retries when a worker dies.

Resource sizing (why nothing deadlocks): the driver itself holds no Ray CPU. Each job's actor
holds `num_gpus` (default 1 when the cluster has GPUs, else 0) and `num_cpus` (default: its share
of a GPU node's CPUs, or 1 on a CPU-only cluster, so N cores run N jobs at once). The data
preflight runs before any actor exists, either in this process (one local node) or as Ray tasks
that ask for no CPU (pinned to each node that can host a job), so it never waits behind jobs.
While jobs run, the driver only calls methods of their own actors (threaded, max_concurrency=2),
which need no further resources.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ray
import yaml
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness import checkpoints, store, visuals_store
from harness.progress import (
    CheckpointSaved,
    Event,
    JobFinished,
    JobLaunched,
    JobProgressed,
    JobRequest,
    JobResumed,
    JobRetrying,
    JobStarted,
    Note,
    SweepStarted,
)
from harness.worker import (
    JobActor,
    JobFailure,
    JobFiles,
    NodeDataReport,
    SyntheticData,
    check_data_here,
    check_data_task,
    resolve_callable,
    short_error,
)
from memseg.config import JobConfig, JobResult, Progress

DEFAULT_JOB_FN = "memseg.job.run"
DEFAULT_DATA_CHECK = "memseg.data.loading:check"
# A short path: Ray's socket paths must stay under the 107-byte limit of AF_UNIX.
LOCAL_TEMP_DIR = f"/tmp/memseg-ray-{os.getuid()}"
BOOTSTRAP_CONFIG = Path.home() / "ray_bootstrap_config.yaml"  # written on a head by `ray up`

# A worker that died (process killed, node lost, OOM-killed) is worth another try on a fresh
# actor; an exception raised by the job itself is deterministic and is not retried.
_WORKER_DEATH = (
    ray.exceptions.RayActorError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.OutOfMemoryError,
    ray.exceptions.ObjectLostError,
)


class PreflightError(RuntimeError):
    """The sweep cannot start: resources no node has, data that is missing or malformed, a job
    function that does not import. Raised before any job starts."""


@dataclass(frozen=True)
class NodeShape:
    node_id: str
    hostname: str
    cpus: float
    gpus: float
    is_head: bool


@dataclass(frozen=True)
class NodeType:
    """A worker type the cluster's autoscaler may start (from the head's bootstrap config)."""

    name: str
    cpus: float
    gpus: float
    max_workers: int


@dataclass(frozen=True)
class SweepOutcome:
    sweep: str
    results_dir: str
    total: int
    ran: tuple[str, ...]
    succeeded: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (job_id, error) of jobs that failed in this run
    done_before: tuple[str, ...]
    failed_before: tuple[str, ...]  # failed in an earlier run and not re-run
    retries: int
    max_running: int  # most jobs seen running at once
    wall_s: float
    request: JobRequest | None  # None when nothing had to run
    resumed: tuple[tuple[str, int], ...] = ()  # (job_id, step) of launches that started from a checkpoint
    checkpoints_written: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.failed_before


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------------
# Ray session and cluster shape


def connect(address: str | None = None) -> bool:
    """Use the Ray session already open in this process, or connect to `address` ("auto", an
    ip:port or ray://) or to $RAY_ADDRESS (set for `ray job submit` entrypoints), or start a local
    one (no dashboard, our own temp dir). Returns True when this call started or connected Ray (so
    the caller shuts it down), False when it reused one."""
    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": "warning"}
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address or None, **common)
    else:
        ray.init(
            include_dashboard=False,
            _temp_dir=LOCAL_TEMP_DIR,
            object_store_memory=1 << 30,
            **common,
        )
    return True


def cluster_nodes() -> list[NodeShape]:
    """The alive nodes and their total CPUs and GPUs."""
    nodes = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources", {})
        nodes.append(
            NodeShape(
                node_id=n["NodeID"],
                hostname=n.get("NodeManagerHostname", ""),
                cpus=float(res.get("CPU", 0.0)),
                gpus=float(res.get("GPU", 0.0)),
                is_head="node:__internal_head__" in res,
            )
        )
    return nodes


def autoscaler_node_types(path: Path = BOOTSTRAP_CONFIG) -> list[NodeType]:
    """Worker types an autoscaler may add, read from the cluster launcher's config on the head;
    empty when there is none (a local or fixed cluster)."""
    if not path.exists():
        return []
    config = yaml.safe_load(path.read_text()) or {}
    head_type = config.get("head_node_type")
    types = []
    for name, spec in (config.get("available_node_types") or {}).items():
        if name == head_type or not spec.get("max_workers"):
            continue
        res = spec.get("resources") or {}
        types.append(NodeType(name, float(res.get("CPU", 0)), float(res.get("GPU", 0)), int(spec["max_workers"])))
    return types


def slots(cpus: float, gpus: float, request: JobRequest) -> int:
    """How many jobs of `request` fit on a machine with `cpus` and `gpus`."""
    eps = 1e-9
    counts = []
    if request.num_cpus > 0:
        counts.append(math.floor(cpus / request.num_cpus + eps))
    if request.num_gpus > 0:
        counts.append(math.floor(gpus / request.num_gpus + eps))
    return min(counts) if counts else 1_000_000


def default_request(
    nodes: Sequence[NodeShape],
    node_types: Sequence[NodeType] = (),
    gpus_per_job: float | None = None,
    cpus_per_job: float | None = None,
) -> JobRequest:
    """Per-job resources: 1 GPU when the cluster has (or can add) GPUs, else none; CPUs: the
    job's share of the best GPU node's CPUs, or 1 on a CPU-only cluster."""
    shapes = [(n.cpus, n.gpus) for n in nodes] + [(t.cpus, t.gpus) for t in node_types]
    gpu_shapes = [(c, g) for c, g in shapes if g > 0]
    num_gpus = gpus_per_job if gpus_per_job is not None else (1.0 if gpu_shapes else 0.0)
    if cpus_per_job is not None:
        num_cpus = cpus_per_job
    elif num_gpus > 0 and gpu_shapes:
        num_cpus = max(max(math.floor(c * min(num_gpus, g) / g) for c, g in gpu_shapes), 1)
    else:
        num_cpus = 1.0
    if num_cpus <= 0 and num_gpus <= 0:
        raise PreflightError("a job that asks for no CPU and no GPU would run every job at once; set --cpus-per-job > 0")
    return JobRequest(num_cpus=float(num_cpus), num_gpus=float(num_gpus))


def check_fits(request: JobRequest, nodes: Sequence[NodeShape], node_types: Sequence[NodeType] = ()) -> None:
    """Raise PreflightError unless some node (alive, or one the autoscaler can add) can hold one
    job. Ray itself would only log a warning and wait forever."""
    shapes = [(n.cpus, n.gpus) for n in nodes] + [(t.cpus, t.gpus) for t in node_types]
    if any(slots(c, g, request) >= 1 for c, g in shapes):
        return
    max_gpus = max((g for _, g in shapes), default=0.0)
    max_cpus = max((c for c, _ in shapes), default=0.0)
    where = "the largest node" + (" (counting the autoscaler's node types)" if node_types else "")
    hints = []
    if request.num_gpus > max_gpus:
        hints.append(
            f"each job asks for {request.num_gpus:g} GPU(s) but {where} has {max_gpus:g}; "
            + ("use --gpus-per-job 0 to run on CPUs" if max_gpus == 0 else f"use --gpus-per-job {max_gpus:g} or less (a fraction like 0.5 shares a GPU)")
        )
    if request.num_cpus > max_cpus:
        hints.append(f"each job asks for {request.num_cpus:g} CPU(s) but {where} has {max_cpus:g}; use --cpus-per-job {max(max_cpus, 1):g} or less")
    if not hints:  # each fits alone, not together on one node
        hints.append(f"no single node has both {request.num_gpus:g} GPU(s) and {request.num_cpus:g} CPU(s); lower --gpus-per-job or --cpus-per-job")
    raise PreflightError("no node can ever run a job: " + "; ".join(hints))


def capacity(request: JobRequest, nodes: Sequence[NodeShape], node_types: Sequence[NodeType] = ()) -> int:
    """Jobs to keep launched at once: what fits now, plus what the autoscaler may add (pending
    actors are what makes it add nodes)."""
    now = sum(slots(n.cpus, n.gpus, request) for n in nodes)
    extra = sum(t.max_workers * slots(t.cpus, t.gpus, request) for t in node_types)
    return max(1, now + extra)


# ---------------------------------------------------------------------------------------------
# Data preflight


def _data_groups(configs: Sequence[JobConfig]) -> list[tuple[str, str | None, tuple[str, ...]]]:
    groups: dict[tuple[str, str | None], set[str]] = {}
    for c in configs:
        groups.setdefault((c.dataset, c.data_root), set()).add(c.category)
    return [(kind, root, tuple(sorted(cats))) for (kind, root), cats in sorted(groups.items(), key=str)]


def job_files(configs: Sequence[JobConfig]) -> JobFiles:
    """The texture folders and backbone weights files the jobs will read (checked with the data)."""
    textures = sorted({c.texture_dir for c in configs if c.texture_dir is not None})
    weights = sorted({c.backbone_weights for c in configs if c.backbone_weights not in ("imagenet", "none")})
    return JobFiles(tuple(textures), tuple(weights))


def _is_this_machine(node: NodeShape) -> bool:
    return node.hostname == socket.gethostname()


def preflight_data(
    configs: Sequence[JobConfig],
    check_path: str,
    request: JobRequest,
    nodes: Sequence[NodeShape],
    synthetic: SyntheticData | None,
    emit: Callable[[Event], None],
) -> None:
    """Check the data, and the texture folders and weights files the jobs name, where the jobs
    will read them: here when the cluster is this one machine, else on every node that can host a
    job (a CPU-free task pinned to it), or, when none is up yet, on the first node the autoscaler
    adds for a job-shaped task."""
    groups, files = _data_groups(configs), job_files(configs)
    if len(nodes) == 1 and _is_this_machine(nodes[0]):
        emit(Note("checking the data" + (" (generating it on first use)" if synthetic else "")))
        problems, ignored = check_data_here(check_path, groups, synthetic, files)
        if problems:
            raise PreflightError("the data is not usable:\n" + "\n".join(problems))
        _note_ignored(ignored, emit)
        return
    hosts = [n for n in nodes if slots(n.cpus, n.gpus, request) >= 1]
    if hosts:
        emit(Note(f"checking the data on {len(hosts)} node(s) that can run jobs"))
        refs = [
            check_data_task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)).remote(
                check_path, groups, synthetic, files
            )
            for n in hosts
        ]
    else:
        emit(Note("no node can run a job yet: checking the data on the first worker the autoscaler starts"))
        refs = [
            check_data_task.options(num_cpus=request.num_cpus, num_gpus=request.num_gpus).remote(
                check_path, groups, synthetic, files
            )
        ]
    try:
        found = ray.get(refs)
    except ray.exceptions.RayError as err:  # e.g. the project is not installed on a node
        raise PreflightError(f"the data check could not run on the cluster: {short_error(err, 2000)}") from None
    reports = []
    for report in found:
        if report.problems:
            reports.append(f"on node {report.node}:\n" + "\n".join(report.problems))
        _note_ignored(report.ignored, emit, f" on node {report.node}")
    if reports:
        raise PreflightError("the data is not usable where the jobs run:\n" + "\n".join(reports))
    differ = data_differences(found)
    if differ:
        raise PreflightError("the data differs between the nodes that run jobs (results would depend on the node):\n" + differ)


def data_differences(reports: Sequence[NodeDataReport]) -> str:
    """The folders whose fingerprint is not the same on every node, one line per node, or ""."""
    lines = []
    for folder in sorted({f for r in reports for f in r.fingerprint}):
        seen = {r.node: r.fingerprint.get(folder, "missing") for r in reports}
        if len(set(seen.values())) > 1:
            lines.append(f"{folder}:\n" + "\n".join(f"  on node {node}: {value}" for node, value in seen.items()))
    return "\n".join(lines)


def _note_ignored(ignored: Sequence[str], emit: Callable[[Event], None], where: str = "", shown: int = 5) -> None:
    """Tell the user which files the data check skipped on purpose (e.g. .DS_Store): never silent."""
    if ignored:
        more = ""
        if len(ignored) > shown:
            more = f"\n  ... and {len(ignored) - shown} more (`python -m harness data check` lists them all)"
        emit(Note(f"warning: {len(ignored)} file(s) ignored{where}:\n  " + "\n  ".join(ignored[:shown]) + more))


# ---------------------------------------------------------------------------------------------
# The sweep


@dataclass
class _Attempt:
    config: JobConfig
    attempt: int
    actor: Any
    run_ref: Any
    info_ref: Any
    launched: float
    worker: dict[str, Any] | None = None
    poll_ref: Any = None
    started_at: str = ""
    progress: Progress | None = None
    checkpoint_step: int = 0  # the newest step whose checkpoint the driver holds on disk
    checkpoint_ref: Any = None


def run_sweep(
    configs: Sequence[JobConfig],
    sweep_name: str,
    results_dir: str | Path,
    job_fn: str = DEFAULT_JOB_FN,
    gpus_per_job: float | None = None,
    cpus_per_job: float | None = None,
    max_retries: int = 2,
    on_event: Callable[[Event], None] | None = None,
    *,
    profile: str = "",
    force: bool = False,
    retry_failed: bool = False,
    data_check: str | None = DEFAULT_DATA_CHECK,
    synthetic: SyntheticData | None = None,
    tick_s: float = 0.25,
    checkpoint_every: int = 0,
) -> SweepOutcome:
    """Run every job of `configs` not already done, one actor each, and persist each result as
    it arrives. Jobs already `ok` in the store are skipped (all re-run with `force`); jobs that
    failed before are skipped unless `retry_failed`. Raises PreflightError before starting any
    job when the cluster or the data cannot serve the sweep. Uses the open Ray session, or starts
    a local one for the call. With `checkpoint_every` > 0 each job's training state is fetched every
    that many steps and kept under RESULTS/<sweep>/checkpoints/ (harness.checkpoints); a job that
    has a checkpoint there starts from it. Takes no lock: `python -m harness run` holds the sweep folder's
    (harness.lock) around this call; a Python caller that may run beside another should too."""
    emit = on_event or (lambda _e: None)
    t0 = time.monotonic()
    try:
        resolve_callable(job_fn)
    except (ImportError, ValueError) as err:
        raise PreflightError(f"the job function {job_fn!r} does not import: {short_error(err)}") from None

    statuses = {} if force else store.job_statuses(results_dir, sweep_name)
    done = tuple(c.job_id for c in configs if statuses.get(c.job_id) == store.STATUS_OK)
    failed_before = tuple(c.job_id for c in configs if statuses.get(c.job_id) == store.STATUS_FAILED)
    skip = set(done) | (set() if retry_failed else set(failed_before))
    to_run = [c for c in configs if c.job_id not in skip]
    not_rerun = () if retry_failed else failed_before

    def started(request: JobRequest | None, cap: int) -> SweepStarted:
        ids = tuple(c.job_id for c in to_run)
        return SweepStarted(sweep_name, len(configs), ids, done, not_rerun, request, cap)

    request: JobRequest | None = None
    loop = _Loop(to_run, sweep_name, Path(results_dir), job_fn, max_retries, emit, profile, synthetic, tick_s)
    loop.checkpoint_every = checkpoint_every
    if not to_run:  # everything is in the store: no Ray needed
        emit(started(None, 0))
    else:
        started_ray = connect()
        try:
            nodes, node_types = cluster_nodes(), autoscaler_node_types()
            request = default_request(nodes, node_types, gpus_per_job, cpus_per_job)
            check_fits(request, nodes, node_types)
            if data_check is not None:
                preflight_data(to_run, data_check, request, nodes, synthetic, emit)
            emit(started(request, capacity(request, nodes, node_types)))
            loop.run(request, node_types)
        finally:
            if started_ray:
                ray.shutdown()
    return SweepOutcome(
        sweep=sweep_name,
        results_dir=str(results_dir),
        total=len(configs),
        ran=tuple(c.job_id for c in to_run),
        succeeded=tuple(loop.succeeded),
        failed=tuple(loop.failed),
        done_before=done,
        failed_before=not_rerun,
        retries=loop.retries,
        max_running=loop.max_running,
        wall_s=time.monotonic() - t0,
        request=request,
        resumed=tuple(loop.resumed),
        checkpoints_written=loop.checkpoints_written,
    )


class _Loop:
    """The submit / wait / persist loop of one sweep (state kept here, not in globals)."""

    def __init__(
        self,
        to_run: Sequence[JobConfig],
        sweep: str,
        results_dir: Path,
        job_fn: str,
        max_retries: int,
        emit: Callable[[Event], None],
        profile: str,
        synthetic: SyntheticData | None,
        tick_s: float,
    ) -> None:
        self.queue: deque[tuple[JobConfig, int]] = deque((c, 1) for c in to_run)
        self.sweep, self.results_dir, self.job_fn = sweep, results_dir, job_fn
        self.request, self.max_retries, self.emit = JobRequest(0, 0), max_retries, emit
        self.profile, self.synthetic, self.tick_s = profile, synthetic, tick_s
        self.running: dict[Any, _Attempt] = {}  # run ref -> attempt
        self.succeeded: list[str] = []
        self.failed: list[tuple[str, str]] = []
        self.retries = 0
        self.max_running = 0
        self.checkpoint_every = 0
        self.resumed: list[tuple[str, int]] = []
        self.checkpoints_written = 0

    def run(self, request: JobRequest, node_types: Sequence[NodeType]) -> None:
        self.request = request
        limit, checked = 1, -math.inf
        try:
            while self.queue or self.running:
                if time.monotonic() - checked > 5.0:  # nodes come and go; so does the capacity
                    limit, checked = capacity(self.request, cluster_nodes(), node_types), time.monotonic()
                while self.queue and len(self.running) < limit:
                    self._launch(*self.queue.popleft())
                ready, _ = ray.wait(list(self.running), num_returns=1, timeout=self.tick_s)
                if ready:  # take every result that is in, not only the first
                    ready, _ = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
                for ref in ready:
                    self._finish(self.running.pop(ref), ref)
                self._poll()
                self._poll_checkpoints()
        finally:
            for attempt in self.running.values():  # Ctrl-C or a crash: leave no actor behind
                ray.kill(attempt.actor)

    def _launch(self, config: JobConfig, attempt: int) -> None:
        plan, resume_step = self._checkpoint_plan(config)
        actor = JobActor.options(num_cpus=self.request.num_cpus, num_gpus=self.request.num_gpus).remote(
            max(1, math.floor(self.request.num_cpus))
        )
        info_ref = actor.info.remote()  # answered at once by the actor's second thread
        run_ref = actor.run.remote(self.job_fn, config, self.synthetic, plan)
        self.running[run_ref] = _Attempt(config, attempt, actor, run_ref, info_ref, time.monotonic(), checkpoint_step=resume_step)
        self.emit(JobLaunched(config.job_id, attempt))
        if resume_step:
            self.resumed.append((config.job_id, resume_step))
            self.emit(JobResumed(config.job_id, attempt, resume_step))

    def _checkpoint_plan(self, config: JobConfig) -> tuple[checkpoints.CheckpointPlan, int]:
        """Checkpoint every N steps, starting from the job's checkpoint on disk if it has one."""
        try:
            return checkpoints.load_plan(self.results_dir, self.sweep, config.job_id, self.checkpoint_every)
        except checkpoints.UnreadableCheckpoint as err:
            self.emit(Note(f"warning: {err}"))
            return checkpoints.CheckpointPlan(self.checkpoint_every), 0

    def _poll_checkpoints(self) -> None:
        """Fetch each running job's newest checkpoint and write it under the sweep folder, so it
        outlives the job's node. One request in flight per job."""
        if self.checkpoint_every <= 0:
            return
        by_ref = {a.checkpoint_ref: a for a in self.running.values() if a.checkpoint_ref is not None}
        if by_ref:
            ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)
            for ref in ready:
                a = by_ref[ref]
                a.checkpoint_ref = None
                try:
                    found = ray.get(ref)
                except _WORKER_DEATH:
                    continue  # the run ref reports the death; the last checkpoint on disk stays
                if found is not None and found[0] > a.checkpoint_step:
                    step, data = found
                    path = checkpoints.checkpoint_path(self.results_dir, self.sweep, a.config.job_id)
                    write_s = checkpoints.write(path, data)
                    a.checkpoint_step = step
                    self.checkpoints_written += 1
                    self.emit(CheckpointSaved(a.config.job_id, step, len(data), write_s))
        for a in self.running.values():
            if a.worker is not None and a.checkpoint_ref is None:
                a.checkpoint_ref = a.actor.checkpoint_after.remote(a.checkpoint_step)

    def _poll(self) -> None:
        """Learn which actors are up (and their pid/node), and fetch their latest progress."""
        by_ref = {}
        for a in self.running.values():
            if a.worker is None:
                by_ref[a.info_ref] = a
            elif a.poll_ref is not None:
                by_ref[a.poll_ref] = a
        if by_ref:
            ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)
            for ref in ready:
                a = by_ref[ref]
                try:
                    value = ray.get(ref)
                except _WORKER_DEATH:
                    continue  # the run ref reports the death
                if ref is a.info_ref:
                    a.worker, a.started_at = value, _now()
                    self.emit(JobStarted(a.config.job_id, a.attempt, value["pid"], value["hostname"], value["node_id"]))
                else:
                    a.poll_ref = None
                    if value is not None and value != a.progress:  # only news
                        a.progress = value
                        self.emit(JobProgressed(a.config.job_id, value))
        started = 0
        for a in self.running.values():
            if a.worker is not None:
                started += 1
                if a.poll_ref is None:
                    a.poll_ref = a.actor.latest.remote()
        self.max_running = max(self.max_running, started)

    def _finish(self, a: _Attempt, ref: Any) -> None:
        config, wall_s = a.config, time.monotonic() - a.launched
        try:
            outcome = ray.get(ref)
        except _WORKER_DEATH as err:
            ray.kill(a.actor)
            reason = short_error(err, 300)
            if a.attempt <= self.max_retries:
                self.retries += 1
                self.emit(JobRetrying(config.job_id, a.attempt + 1, reason))
                self.queue.appendleft((config, a.attempt + 1))
                return
            outcome = JobFailure(f"the worker died {a.attempt} time(s); last: {reason}", "")
        except ray.exceptions.RayError as err:  # unschedulable, runtime env, result not deliverable
            outcome = JobFailure(short_error(err), "")
        if a.worker is None:  # finished before the poll saw it start
            self._learn_worker(a)
        ray.kill(a.actor)  # frees its GPU and CPU at once; the process exits
        self._persist(a, outcome, wall_s)
        checkpoints.delete(self.results_dir, self.sweep, config.job_id)  # committed: it has served

    def _learn_worker(self, a: _Attempt) -> None:
        try:
            a.worker = ray.get(a.info_ref, timeout=10)
        except (ray.exceptions.GetTimeoutError, *_WORKER_DEATH):
            return
        a.started_at = a.started_at or _now()
        w = a.worker
        self.emit(JobStarted(a.config.job_id, a.attempt, w["pid"], w["hostname"], w["node_id"]))

    def _persist(self, a: _Attempt, outcome: JobResult | JobFailure, wall_s: float) -> None:
        """The driver writes every result (never the worker), so no result lives on a worker's disk."""
        config, worker, recorded_at = a.config, a.worker or {}, _now()
        if isinstance(outcome, JobResult) and outcome.config.job_id != config.job_id:
            outcome = JobFailure(f"the job returned a result for another config ({outcome.config.job_id})", "")
        if isinstance(outcome, JobResult):
            outcome = visuals_store.persist(self.results_dir, self.sweep, outcome)  # pictures before the commit marker
            row = store.row_from_result(
                self.sweep, self.profile, outcome, attempts=a.attempt, worker=worker, recorded_at=recorded_at, wall_s=wall_s
            )
            store.write_job(self.results_dir, row, store.scores_frame(outcome))
            self.succeeded.append(config.job_id)
            self.emit(JobFinished(config.job_id, store.STATUS_OK, "", a.attempt, wall_s))
            return
        row = store.row_from_failure(
            self.sweep,
            self.profile,
            config,
            error=outcome.error,
            traceback=outcome.traceback,
            attempts=a.attempt,
            worker=worker,
            recorded_at=recorded_at,
            wall_s=wall_s,
            started_at=a.started_at,
        )
        store.write_job(self.results_dir, row, None)
        self.failed.append((config.job_id, outcome.error))
        self.emit(JobFinished(config.job_id, store.STATUS_FAILED, outcome.error, a.attempt, wall_s))
