"""The Ray driver: `run_sweep` runs every job of a sweep that is not done yet, one actor each,
and persists each result as it arrives. It reads top to bottom like Ray's own fan-out examples:
skip what is done, size the request (harness.cluster), check the data (harness.preflight), then
submit, `ray.wait`, persist, poll progress, and retry a job whose worker died.

While jobs run, the driver only calls methods of their own actors (threaded, max_concurrency=2),
which need no further resources, so nothing waits behind the jobs.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import ray
from ray.actor import ActorHandle

from harness import checkpoints, cluster, store
from harness.cluster import Cluster, JobRequest, PreflightError
from harness.options import DEFAULT_DATA_CHECK, DEFAULT_JOB_FN
from harness.plan import Plan
from harness.preflight import check_job_fn, ready
from harness.progress import (
    Event,
    JobFinished,
    JobLaunched,
    JobProgressed,
    JobRetrying,
    JobStarted,
    SweepOutcome,
    SweepStarted,
    WorkerInfo,
)
from harness.worker import JobActor, JobFailure, short_error
from memseg.clock import utc_now
from memseg.config import JobConfig
from memseg.result import JobResult, Progress

__all__ = ["DEFAULT_DATA_CHECK", "DEFAULT_JOB_FN", "PreflightError", "SweepOutcome", "run_sweep"]

# A worker that died (process killed, node lost, OOM-killed) is worth another try on a fresh
# actor; an exception raised by the job itself is deterministic and is not retried.
_WORKER_DEATH = (
    ray.exceptions.RayActorError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.OutOfMemoryError,
    ray.exceptions.ObjectLostError,
)
CAPACITY_EVERY_S = 5.0  # nodes come and go; so does the number of jobs to keep launched


def run_sweep(
    plan: Plan, *, on_event: Callable[[Event], None] | None = None, job_fn: str = DEFAULT_JOB_FN, tick_s: float = 0.25
) -> SweepOutcome:
    """Run every job of `plan` that it says still runs (`plan.to_run`, the one skip rule applied
    once when the plan was made), one actor each, committing each result as it arrives. Jobs
    checkpoint every `plan.checkpoint_every` steps and resume from one (harness.checkpoints).
    The cluster and the per-job request are the plan's when it has them (a run discovered the
    cluster once), else discovered and sized here. Raises PreflightError before any job starts
    when the cluster or the data cannot serve the sweep. Uses the open Ray session or opens one
    (harness.cluster.session). Takes no lock: `python -m harness run` holds the sweep folder's
    (harness.lock); a caller beside another should too."""
    emit = on_event or (lambda _e: None)
    t0 = time.monotonic()
    check_job_fn(job_fn)
    running = set(plan.to_run.run)
    jobs = [c for c in plan.configs if c.job_id in running]
    loop = _Loop(plan, jobs, job_fn, emit, tick_s)
    started = SweepStarted(
        plan.name, len(plan.configs), tuple(c.job_id for c in jobs), plan.to_run.done, plan.to_run.failed, None, 0
    )
    if not jobs:  # everything is in the store: no Ray needed
        emit(started)
    else:
        with cluster.session():
            shape, request = ready(plan, jobs, emit)
            emit(replace(started, request=request, capacity=cluster.capacity(request, shape.nodes, shape.node_types)))
            loop.run(request, shape)
    return loop.outcome(started, time.monotonic() - t0)


@dataclass
class _Attempt:
    """One try of one job on its own actor: the refs the loop waits on, and what it learned."""

    config: JobConfig
    attempt: int
    actor: ActorHandle
    run_ref: ray.ObjectRef
    info_ref: ray.ObjectRef
    launched: float
    worker: WorkerInfo | None = None
    poll_ref: ray.ObjectRef | None = None
    started_at: str = ""
    progress: Progress | None = field(default=None)
    checkpoint_step: int = 0  # the newest step whose checkpoint the driver holds on disk
    checkpoint_ref: ray.ObjectRef | None = None


class _Loop:
    """The submit / wait / persist loop of one sweep (state kept here, not in globals)."""

    def __init__(
        self, plan: Plan, to_run: Sequence[JobConfig], job_fn: str, emit: Callable[[Event], None], tick_s: float
    ) -> None:
        self.plan, self.sweep, self.results_dir = plan, plan.name, plan.options.results
        self.queue: deque[tuple[JobConfig, int]] = deque((c, 1) for c in to_run)
        self.job_fn, self.emit, self.tick_s = job_fn, emit, tick_s
        self.request, self.max_retries, self.profiles = JobRequest(0, 0), plan.spec.max_retries, plan.profiles()
        self.keeper = checkpoints.Keeper(self.results_dir, self.sweep, plan.checkpoint_every, emit)
        self.running: dict[ray.ObjectRef, _Attempt] = {}  # run ref -> attempt
        self.succeeded: list[str] = []
        self.failed: list[tuple[str, str]] = []
        self.retries = 0
        self.max_running = 0

    def outcome(self, started: SweepStarted, wall_s: float) -> SweepOutcome:
        """What the sweep did: the jobs run, kept and retried, and how long it took."""
        kept = self.plan.to_run
        return SweepOutcome(
            sweep=self.sweep,
            results_dir=str(self.results_dir),
            total=len(self.plan.configs),
            ran=started.to_run,
            succeeded=tuple(self.succeeded),
            failed=tuple(self.failed),
            done_before=kept.done,
            failed_before=kept.failed,
            stale=kept.stale,
            retries=self.retries,
            max_running=self.max_running,
            wall_s=wall_s,
            request=self.request if started.to_run else None,
            resumed=tuple(self.keeper.resumed),
            checkpoints_written=self.keeper.written,
        )

    def run(self, request: JobRequest, shape: Cluster) -> None:
        self.request = request
        limit, checked = 1, -math.inf
        try:
            while self.queue or self.running:
                if time.monotonic() - checked > CAPACITY_EVERY_S:
                    limit = cluster.capacity(request, cluster.cluster_nodes(), shape.node_types)
                    checked = time.monotonic()
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
        plan, resume_step = self.keeper.plan(config.job_id)
        options = {"num_cpus": self.request.num_cpus, "num_gpus": self.request.num_gpus}
        actor = JobActor.options(**options).remote(max(1, math.floor(self.request.num_cpus)))  # type: ignore[attr-defined]
        info_ref = actor.info.remote()  # answered at once by the actor's second thread
        run_ref = actor.run.remote(self.job_fn, config, self.plan.synthetic, plan)
        self.running[run_ref] = _Attempt(config, attempt, actor, run_ref, info_ref, time.monotonic(), checkpoint_step=resume_step)
        self.emit(JobLaunched(config.job_id, attempt))
        self.keeper.launched(config.job_id, attempt, resume_step)

    def _poll_checkpoints(self) -> None:
        """Fetch each running job's newest checkpoint and keep it under the sweep folder, so it
        outlives the job's node. One request in flight per job."""
        if self.keeper.every <= 0:
            return
        by_ref = {a.checkpoint_ref: a for a in self.running.values() if a.checkpoint_ref is not None}
        for ref in ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)[0] if by_ref else []:
            a = by_ref[ref]
            a.checkpoint_ref = None
            with contextlib.suppress(*_WORKER_DEATH):  # the run ref reports the death; the file on disk stays
                a.checkpoint_step = self.keeper.keep(a.config.job_id, ray.get(ref), a.checkpoint_step)
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
        ready = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)[0] if by_ref else []
        for ref in ready:
            a = by_ref[ref]
            try:
                value = ray.get(ref)
            except _WORKER_DEATH:
                continue  # the run ref reports the death
            if ref is a.info_ref:
                self._started(a, value)
            else:
                a.poll_ref = None
                if value is not None and value != a.progress:  # only news
                    a.progress = value
                    self.emit(JobProgressed(a.config.job_id, value))
        started = [a for a in self.running.values() if a.worker is not None]
        for a in started:
            if a.poll_ref is None:
                a.poll_ref = a.actor.latest.remote()
        self.max_running = max(self.max_running, len(started))

    def _started(self, a: _Attempt, worker: WorkerInfo) -> None:
        """The one place a job is known to have started: where, and since when."""
        a.worker, a.started_at = worker, a.started_at or utc_now()
        self.emit(JobStarted(a.config.job_id, a.attempt, worker))

    def _finish(self, a: _Attempt, ref: ray.ObjectRef) -> None:
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
            try:
                self._started(a, ray.get(a.info_ref, timeout=10))
            except (ray.exceptions.GetTimeoutError, *_WORKER_DEATH):
                pass  # the row then names no worker
        ray.kill(a.actor)  # frees its GPU and CPU at once; the process exits
        self._persist(a, outcome, wall_s)
        checkpoints.delete(self.results_dir, self.sweep, config.job_id)  # committed: it has served

    def _persist(self, a: _Attempt, outcome: JobResult | JobFailure, wall_s: float) -> None:
        """The driver commits every result (never the worker), so no result lives on a worker's disk."""
        config = a.config
        profile = self.profiles if isinstance(self.profiles, str) else self.profiles.get(config.job_id, "")
        how = store.Attempt(self.sweep, profile, a.attempt, a.worker, utc_now(), wall_s, self.request.num_gpus, a.started_at)
        if isinstance(outcome, JobResult) and outcome.config.job_id != config.job_id:
            outcome = JobFailure(f"the job returned a result for another config ({outcome.config.job_id})", "")
        if isinstance(outcome, JobResult):
            store.commit(self.results_dir, how, outcome)
            self.succeeded.append(config.job_id)
            self.emit(JobFinished(config.job_id, store.STATUS_OK, "", a.attempt, wall_s))
            return
        store.commit_failure(self.results_dir, how, config, outcome.error, outcome.traceback)
        self.failed.append((config.job_id, outcome.error))
        self.emit(JobFinished(config.job_id, store.STATUS_FAILED, outcome.error, a.attempt, wall_s))
