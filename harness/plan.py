"""What a run will do, resolved before any job starts, from a SweepSpec and plain RunOptions
(harness.options): the profile (from the cluster's GPUs unless asked), the data, the name, the jobs,
the jobs still to run (the store read once) and the per-job request on the discovered cluster
(`resolve_plan`). The driver runs a Plan and nothing else (harness.driver.run_sweep). Raises
ValueError on bad input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from harness import checkpoints, cluster, lock, packing, paths, store
from harness.cluster import Cluster, JobRequest
from harness.options import RunOptions, SyntheticData
from harness.packing import Estimate, Packing
from harness.sweep import SweepSpec, check_generated_counts, expand, sweep_name, variant_profile
from memseg.config import JobConfig
from memseg.profiles import profile

DATA_SEED = 0  # the generated data set is the same for every job seed


@dataclass(frozen=True)
class Plan:
    """A run resolved from the flags and the cluster: what the banner shows and the driver runs."""

    spec: SweepSpec
    name: str
    configs: tuple[JobConfig, ...]
    profile: str
    why: str  # why this profile
    synthetic: SyntheticData | None  # the generated data set, when the sweep reads it
    cluster: Cluster | None  # None on a dry run that starts no Ray
    request: JobRequest | None  # None without a cluster, or when no request can be sized
    gpus: float  # the cluster's GPUs (or this machine's on a dry run)
    to_run: store.ToRun  # which jobs run and which are kept (harness.store.to_run), from one read of the store
    checkpoint_every: int = 0  # steps between a job's checkpoints (0: none)
    packing: Packing | None = None  # --jobs-per-gpu as resolved on the cluster
    estimate: Estimate | None = None  # training wall time of the jobs still to run
    lock_warning: str = ""  # what taking the sweep folder's lock had to say (a stale lock taken over)
    options: RunOptions = field(default_factory=RunOptions)  # how the run treats the sweep: results folder, data check, ...

    @property
    def gpus_per_job(self) -> float | None:
        """What each job's actor asks for: 1/K with --jobs-per-gpu K, else --gpus-per-job (or None: sized by the cluster)."""
        return self.packing.gpus_per_job if self.packing is not None else self.spec.gpus_per_job

    def profiles(self) -> str | Mapping[str, str]:
        """The profile each row records: the sweep's, or per job its variant's base profile."""
        if not self.spec.variants:
            return self.profile
        return {c.job_id: variant_profile(self.spec, c.variant) for c in self.configs}


def _local_gpus() -> int:
    """GPUs on this machine, without starting Ray (for --dry-run)."""
    import torch  # start-up time: only a dry run without Ray counts GPUs this way

    return int(torch.cuda.device_count())


def choose_profile(spec: SweepSpec, cluster_gpus: float) -> tuple[str, str]:
    """The profile in force and why."""
    if spec.profile is not None:
        return spec.profile, "as asked"
    if cluster_gpus > 0:
        return "paper", f"the cluster has {cluster_gpus:g} GPU(s); --profile smoke for a quick check"
    return "smoke", "the cluster has no GPU (the paper recipe needs one); --profile paper to insist"


def known_name(spec: SweepSpec, options: RunOptions) -> str | None:
    """The sweep's name when the sweep alone decides it; None when it is "<profile>-<dataset>" and
    the profile waits on the cluster's GPUs (harness.sweep.sweep_name). With a known name a run
    takes the sweep folder's lock before Ray starts, so a second run of a sweep that is being
    written is refused in a second, not after a cluster start."""
    if options.name:
        return options.name
    if spec.name is None and spec.profile is None:
        return None
    return sweep_name(spec, options.name_digest)


def resolve_plan(spec: SweepSpec, options: RunOptions, shape: Cluster | None = None, held: lock.RunLock | None = None) -> Plan:
    """The profile (from the cluster's GPUs unless asked), the data (generated when none is given),
    the sweep's name and its jobs (expanded once), the jobs still to run (the store read once), the
    per-job request on `shape` (the cluster as discovered once by the caller; None on a dry run)
    and the checkpoint interval. Raises ValueError on bad input. With `held` (a run, not a dry run),
    the sweep folder's lock is taken (unless the caller took it already, from `known_name`) before
    the store is read, so no other run can commit a job between that read and this run's end
    (harness.lock; LockHeld when another run holds it)."""
    gpus = shape.gpus if shape is not None else _local_gpus()
    profile_name, why = choose_profile(spec, gpus)
    spec = spec.replace(profile=profile_name)
    synthetic = None
    if spec.dataset == "synthetic":
        image_size = int({**profile(profile_name), **spec.overrides}.get("image_size", 256))
        spec = spec.replace(data_root=spec.data_root or str(paths.synthetic_data_dir(options.results, image_size)))
        synthetic = SyntheticData(spec.data_root or "", image_size, DATA_SEED, spec.categories)
    # Flags that change the experiment add a hash to a derived name: same flags, same folder.
    spec = spec.replace(name=known_name(spec, options))
    configs = expand(spec)
    check_generated_counts(spec.dataset, configs)  # before any job: the generated set's size is known
    if options.artefacts_dir:
        configs = [c.replace(out_dir=str(options.artefacts_dir)) for c in configs]
    if options.step_mode:
        configs = [c.replace(step_mode=options.step_mode) for c in configs]
    if held is not None:
        held.take(paths.sweep_dir(options.results, spec.name or ""))
    plan = plan_jobs(configs, spec, options, why=why, synthetic=synthetic, gpus=gpus)
    plan = replace(plan, cluster=shape, lock_warning=held.warning if held else "")
    return _sized(plan, shape, options.gpu_memory_gb) if shape is not None else plan


def plan_jobs(
    configs: Sequence[JobConfig],
    spec: SweepSpec,
    options: RunOptions,
    *,
    why: str = "",
    synthetic: SyntheticData | None = None,
    gpus: float = 0.0,
) -> Plan:
    """The plan of these jobs (`resolve_plan` expands them from `spec`; a test may give its own) under
    the sweep `spec` (its name, profile, resources and retries): which still run (the one skip rule,
    harness.store.to_run, on the only read of the store) and the checkpoint interval."""
    name, profile_name = spec.name or "", spec.profile or ""
    runs = store.plan_run(
        options.results, name, (c.job_id for c in configs), force=options.force, retry_failed=options.retry_failed,
        accept_revisions=options.accept_revisions,
    )  # fmt: skip
    every = options.checkpoint_every
    if every is None:
        every = checkpoints.default_every(profile_name, max((c.steps for c in configs), default=0))
    return Plan(spec, name, tuple(configs), profile_name, why, synthetic, None, None, gpus, runs, every, options=options)


def _sized(plan: Plan, shape: Cluster, gpu_memory_gb: float | None) -> Plan:
    """The plan with its GPU sharing, per-job request and time estimate on `shape`. No request
    when none fits: the driver says why, before any job starts."""
    spec = plan.spec
    packed = None
    if spec.jobs_per_gpu is not None:  # refused here when it cannot fit
        packed = packing.resolve(spec.jobs_per_gpu, plan.profile, plan.configs, shape, gpu_memory_gb)
    plan = replace(plan, packing=packed)
    request, estimate = None, None
    with contextlib.suppress(cluster.PreflightError):
        request = cluster.default_request(shape.nodes, shape.node_types, plan.gpus_per_job, spec.cpus_per_job)
    if request is not None:
        running = set(plan.to_run.run)
        estimate = packing.estimate(plan.profile, [c for c in plan.configs if c.job_id in running], request, shape, packed)
    return replace(plan, request=request, estimate=estimate)
