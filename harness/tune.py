"""A recipe search on Ray Tune: `run_search(plan, search)` runs trials of the search space, each
trial the jobs of the plan (categories x seeds) with the trial's recipe on top, trained with a
validation curve and never evaluated on the test set (memseg.job.validate). Each validation point
is reported to Tune as it is computed, so ASHA can stop a trial that trails; every trial becomes a
row under <results>/<search>/trials/ (harness.trials_store).

The search goes through what `harness run` goes through: the plan (harness.plan, the cluster as
discovered once, the request and GPU packing), the cluster's fit (harness.cluster), the data check
on the nodes (harness.preflight). Tune's own experiment state lives in <results>/<search>/tune/, so
a search that crashed is restored from it (`Tuner.restore`): finished trials are kept, unfinished
ones start again from their first step (a function trainable keeps no checkpoint).

A trial's time axis is the training steps it has done over its jobs, run one after another: in its
k-th job at step s the reported metric is the mean over its first k jobs at step s (every earlier
job has a point there), the same definition for every trial, so ASHA compares like with like. With
one job (one category, one seed) it is the job's own step and point.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from harness import cluster, paths, trials_store
from harness.options import SyntheticData
from harness.plan import Plan
from harness.preflight import check_job_fn, ready
from harness.progress import Event
from harness.search import SearchSpec, plain
from harness.trials_store import STATUS_FAILED, STATUS_FINISHED, STATUS_STOPPED, TrialRow
from harness.worker import prepare_synthetic, resolve_callable, short_error
from memseg import revision as code_revision
from memseg.clock import utc_now
from memseg.config import JobConfig
from memseg.protocol import protocol_for

DEFAULT_TRIAL_FN = "memseg.job.validate"  # trains with a validation curve, never reads the test set
EXPERIMENT = "tune"  # Tune's experiment folder: <results>/<search>/tune/
MARKER = "search.json"  # what the stored Tune state was made for: a restore must be of the same search
STEP = "step"  # the time axis ASHA reads: training steps done by the trial over its jobs
POINT_KEYS = ("image_auroc", "pixel_auroc", "loss")
_AUTO_LOGGERS_ENV = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"


@dataclass(frozen=True)
class SearchOutcome:
    """What a search did: every trial's row, the best finished one, whether Tune's state was
    restored, the request each trial held and the wall time."""

    name: str
    rows: tuple[TrialRow, ...]
    best: TrialRow | None
    restored: bool
    request: cluster.JobRequest
    wall_s: float


def param_space(search: SearchSpec) -> dict[str, Any]:
    """The search space in Tune's terms."""
    space: dict[str, Any] = {}
    for dim in search.space:
        if dim.kind == "loguniform":
            space[dim.field] = tune.loguniform(*dim.values)
        elif dim.kind == "uniform":
            space[dim.field] = tune.uniform(*dim.values)
        elif dim.kind == "choice":
            space[dim.field] = tune.choice(list(dim.values))
        else:
            space[dim.field] = tune.grid_search(list(dim.values))
    return space


def run_trial(
    params: dict[str, Any],
    *,
    configs: Sequence[str],
    job_fn: str,
    synthetic: SyntheticData | None,
    num_threads: int,
) -> None:
    """One trial on a Tune worker: each job of `configs` (JSON) with `params` on top, one after
    another, each validation point reported to Tune as it comes (see the module's docstring)."""
    import torch  # the worker's, here: the driver never trains

    if synthetic is not None:
        prepare_synthetic(synthetic)
    torch.set_num_threads(num_threads)
    fn = resolve_callable(job_fn)
    jobs = [JobConfig.from_dict({**json.loads(c), **params}) for c in configs]
    curves: list[dict[int, tuple[float, ...]]] = []
    for index, config in enumerate(jobs):
        own: dict[int, tuple[float, ...]] = {}
        curves.append(own)

        def report(step: int, point: Any, index: int = index, own: dict[int, tuple[float, ...]] = own) -> None:
            own[step] = tuple(float(getattr(point, k)) for k in POINT_KEYS)
            at_step = [c[step] for c in curves if step in c]
            means = {k: _mean([p[i] for p in at_step]) for i, k in enumerate(POINT_KEYS)}
            tune.report({STEP: index * jobs[0].steps + step, **means})

        fn(config, None, on_validation=report)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def check_search(plan: Plan, search: SearchSpec) -> None:
    """ValueError when the plan's jobs cannot be searched: without a validation curve there is
    nothing to judge a trial by, and the searched fields must be the same for every job."""
    for config in plan.configs:
        if not config.val_every:
            raise ValueError(
                f"job {config.job_id} has no validation curve: a search judges trials by it; give val_every "
                "(--val-every N, or `val_every:` in the sweep's overrides)"
            )
    steps = {c.steps for c in plan.configs}
    if len(steps) != 1:
        raise ValueError(f"a search's jobs must train for the same steps, got {sorted(steps)}")
    if "steps" in search.fields:
        raise ValueError("steps cannot be searched: it is the time axis the scheduler stops trials on")


def marker_text(plan: Plan, search: SearchSpec) -> str:
    """What the search folder's Tune state was made for: the revision, the jobs and the search."""
    return json.dumps(
        {
            "revision": code_revision.REVISION,
            "jobs": [c.job_id for c in plan.configs],
            "space": [d.describe() for d in search.space],
            "metric": search.metric,
            "mode": search.mode,
            "trials": search.trials,
            "scheduler": search.scheduler,
        },
        sort_keys=True,
    )


def check_restorable(results: Path, name: str, marker: str) -> bool:
    """True when the search folder holds Tune state of this very search (it is then restored);
    False when it holds none. ValueError when it holds another's: another revision, other jobs or
    another search space would mix trials that are not comparable."""
    folder = paths.sweep_dir(results, name)
    state = folder / EXPERIMENT / EXPERIMENT
    if not tune.Tuner.can_restore(str(state.resolve())):
        return False
    stored = folder / MARKER
    if not stored.exists() or stored.read_text() != marker:
        raise ValueError(
            f"{folder} holds the state of another search (another revision, other jobs or another search space): "
            f"give the search another name (--name), or delete {folder / EXPERIMENT} and {folder / trials_store.TRIALS}"
        )
    return True


def run_search(
    plan: Plan,
    search: SearchSpec,
    *,
    job_fn: str = DEFAULT_TRIAL_FN,
    on_event: Callable[[Event], None] | None = None,
) -> SearchOutcome:
    """Run the search on the open Ray session (or one opened here), commit one row per trial, and
    return them with the best finished trial (by its last validation point). Raises PreflightError
    before any trial when the cluster or the data cannot serve it, ValueError on a bad search."""
    emit = on_event or (lambda _e: None)
    t0 = time.monotonic()
    check_job_fn(job_fn)
    check_search(plan, search)
    results, name = plan.options.results, plan.name
    marker = marker_text(plan, search)
    restored = check_restorable(results, name, marker)
    with cluster.session():
        _shape, request = ready(plan, plan.configs, emit)
        trainable = tune.with_resources(
            tune.with_parameters(
                run_trial,
                configs=[c.to_json() for c in plan.configs],
                job_fn=job_fn,
                synthetic=plan.synthetic,
                num_threads=max(1, math.floor(request.num_cpus)),
            ),
            {"cpu": request.num_cpus, "gpu": request.num_gpus},
        )
        storage = (paths.sweep_dir(results, name) / EXPERIMENT).resolve()
        storage.mkdir(parents=True, exist_ok=True)
        (paths.sweep_dir(results, name) / MARKER).write_text(marker)
        # Tune's result files, named (CSV and JSON: what a restore reads back), and not its TensorBoard
        # logger, which it would otherwise add and warn about where tensorboardX is not installed.
        os.environ[_AUTO_LOGGERS_ENV] = "1"
        if restored:
            tuner = tune.Tuner.restore(str(storage / EXPERIMENT), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(search),
                tune_config=tune.TuneConfig(
                    metric=search.metric, mode=search.mode, num_samples=search.trials, scheduler=scheduler(plan, search)
                ),
                run_config=tune.RunConfig(
                    name=EXPERIMENT, storage_path=str(storage), verbose=0, callbacks=[CSVLoggerCallback(), JsonLoggerCallback()]
                ),
            )
        grid = tuner.fit()
        rows = tuple(
            trials_store_row(
                plan, search, result.metrics or {}, result.metrics_dataframe, result.config or {}, result.path, result.error
            )
            for result in grid
        )
    for row in rows:
        trials_store.commit_trial(results, row)
    return SearchOutcome(name, rows, best_trial(rows), restored, request, time.monotonic() - t0)


def scheduler(plan: Plan, search: SearchSpec) -> FIFOScheduler:
    """ASHA on the trial's steps (max: every job's steps; a rung from `grace_steps` on), or none."""
    if search.scheduler == "none":
        return FIFOScheduler()
    steps, val_every = plan.configs[0].steps, plan.configs[0].val_every
    total = steps * len(plan.configs)
    return ASHAScheduler(
        time_attr=STEP,
        max_t=total,
        grace_period=min(search.grace(steps, val_every), total),
        reduction_factor=search.reduction_factor,
    )


def trials_store_row(
    plan: Plan,
    search: SearchSpec,
    last: dict[str, Any],
    history: pd.DataFrame | None,
    params: dict[str, Any],
    path: str,
    error: BaseException | None,
) -> TrialRow:
    """One finished, stopped or failed trial as its row. A trial that ended before its last step
    without an error was stopped by the scheduler."""
    first = plan.configs[0]
    total = first.steps * len(plan.configs)
    curve: tuple[tuple[int, float, float, float], ...] = ()
    if history is not None and STEP in history:
        curve = tuple(
            (int(r[STEP]), _value(r, "image_auroc"), _value(r, "pixel_auroc"), _value(r, "loss")) for _, r in history.iterrows()
        )
    last_step = curve[-1][0] if curve else 0
    if error is not None:
        status = STATUS_FAILED
    else:
        status = STATUS_FINISHED if last_step >= total else STATUS_STOPPED
    value = float(last.get(search.metric, math.nan)) if last else math.nan
    return TrialRow(
        trial_id=str(last.get("trial_id") or Path(path).name),
        search=plan.name,
        status=status,
        recipe={k: plain(params[k]) for k in search.fields if k in params},
        metric=search.metric,
        mode=search.mode,
        value=value,
        steps=total,
        last_step=last_step,
        stopped_at_step=last_step if status == STATUS_STOPPED else -1,
        curve=curve,
        categories=tuple(dict.fromkeys(c.category for c in plan.configs)),
        seeds=tuple(dict.fromkeys(c.seed for c in plan.configs)),
        revision=code_revision.REVISION,
        protocol=protocol_for(first),
        config_json=first.to_json(),
        wall_s=float(last.get("time_total_s", math.nan)) if last else math.nan,
        finished_at=utc_now(),
        error=short_error(error) if error is not None else "",
    )


def _value(point: pd.Series, key: str) -> float:
    """One reported value of a point of Tune's history; NaN where it is missing."""
    value = point.get(key)
    return math.nan if value is None else float(value)


def best_trial(rows: Sequence[TrialRow]) -> TrialRow | None:
    """The finished trial with the best metric at its last point (the final model of its recipe);
    a stopped or failed trial never wins. None when no trial finished with a finite value."""
    finished = [r for r in rows if r.status == STATUS_FINISHED and math.isfinite(r.value)]
    if not finished:
        return None
    sign = 1.0 if finished[0].mode == "max" else -1.0
    return max(finished, key=lambda r: (sign * r.value, r.trial_id))
