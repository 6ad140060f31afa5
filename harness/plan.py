"""What `harness run` will do, resolved before any job starts: the sweep from the --sweep file and
the flags (`build_spec`), then the profile, data, name, jobs, the jobs still to run and the
per-job request on the discovered cluster (`resolve_plan`). Raises ValueError on bad input.

The store's statuses are read once here (`Plan.to_run`) and the cluster discovered once by the
caller (`Plan.cluster`); the driver takes both as they are.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import checkpoints, cluster, lock, packing, paths, store
from harness.cluster import Cluster, JobRequest
from harness.packing import Estimate, Packing
from harness.sweep import (
    SweepSpec,
    check_generated_counts,
    expand,
    load_sweep,
    parse_ablations,
    parse_categories,
    parse_seeds,
    parse_variants,
    select_variants,
    sweep_name,
    variant_profile,
)
from memseg.cli_recipe import recipe_overrides
from memseg.config import JobConfig, profile
from memseg.data.registry import get_dataset

if TYPE_CHECKING:
    from harness.worker import SyntheticData

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

    @property
    def gpus_per_job(self) -> float | None:
        """What each job's actor asks for: 1/K with --jobs-per-gpu K, else --gpus-per-job (or None: sized by the cluster)."""
        return self.packing.gpus_per_job if self.packing is not None else self.spec.gpus_per_job

    def profiles(self) -> str | Mapping[str, str]:
        """The profile each row records: the sweep's, or per job its variant's base profile."""
        if not self.spec.variants:
            return self.profile
        return {c.job_id: variant_profile(self.spec, c.variant) for c in self.configs}


def accepted_revisions(args: argparse.Namespace) -> tuple[int, ...]:
    """Every revision given with --accept-revision (repeated or comma separated)."""
    return tuple(sorted({r for group in getattr(args, "accept_revision", None) or () for r in group}))


def build_spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep from the --sweep file (if any) with the flags on top. The profile may stay None
    (chosen from the cluster later)."""
    spec = load_sweep(args.sweep) if args.sweep else SweepSpec()
    spec = spec.replace(**_flag_changes(args, spec))
    if args.variants:
        spec = select_variants(spec, parse_variants(args.variants))
    if args.gpu_memory_gb is not None and spec.jobs_per_gpu is None:
        raise ValueError("--gpu-memory-gb sizes --jobs-per-gpu: give --jobs-per-gpu K|auto with it, or drop it")
    if not spec.categories:
        raise ValueError("say which categories to run: --all-categories, --categories a,b or --sweep FILE")
    if spec.dataset != "synthetic" and spec.data_root is None and not args.dry_run:  # a dry run reads no data
        source = get_dataset(spec.dataset).download
        how = f"get it with `python -m harness data download {source} --out DIR`, " if source else ""
        raise ValueError(
            f"{spec.dataset} data needs --data-root (a folder every node sees at that path); "
            f"{how}or use generated data with --dataset synthetic"
        )
    configs = expand(spec.replace(profile=spec.profile or "paper"))  # bad overrides fail here, before Ray starts
    if spec.profile is not None:  # else the profile, and so the memory bank's size, waits on the cluster
        check_generated_counts(spec.dataset, configs)
    return spec


def _flag_changes(args: argparse.Namespace, spec: SweepSpec) -> dict[str, Any]:
    """The fields of the sweep that the flags replace."""
    changes: dict[str, Any] = {}
    dataset = args.dataset or ("mvtec" if args.data_root and not args.sweep else spec.dataset)
    if args.all_categories:
        changes["categories"] = parse_categories("all", dataset)
    elif args.categories:
        changes["categories"] = parse_categories(args.categories, dataset)
    if args.seeds:
        changes["seeds"] = parse_seeds(args.seeds)
    if args.ablations:
        changes["ablations"] = parse_ablations(args.ablations)
    for key in ("name", "profile", "gpus_per_job", "cpus_per_job", "max_retries", "jobs_per_gpu"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.jobs_per_gpu is not None and args.gpus_per_job is not None:
        raise ValueError("give --jobs-per-gpu or --gpus-per-job, not both: K jobs per GPU is 1/K GPU per job")
    # A flag replaces the sweep file's way of sharing GPUs.
    if args.jobs_per_gpu is not None:
        changes["gpus_per_job"] = None
    elif args.gpus_per_job is not None:
        changes["jobs_per_gpu"] = None
    if args.data_root:
        changes["data_root"] = str(Path(args.data_root).resolve())
    if args.dataset or (args.data_root and not args.sweep):
        changes["dataset"] = dataset
    overrides = recipe_overrides(args)
    if overrides:
        changes["overrides"] = {**spec.overrides, **overrides}
    return changes


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


def known_name(args: argparse.Namespace, spec: SweepSpec) -> str | None:
    """The sweep's name when the flags and the --sweep file decide it alone; None when it is
    "<profile>-<dataset>" and the profile waits on the cluster's GPUs (harness.sweep.sweep_name).
    With a known name the run takes the sweep folder's lock before Ray starts, so a second run of
    a sweep that is being written is refused in a second, not after a cluster start."""
    if args.name:
        return str(args.name)
    if spec.name is None and spec.profile is None:
        return None
    return sweep_name(spec, recipe_overrides(args))


def resolve_plan(args: argparse.Namespace, spec: SweepSpec, shape: Cluster | None, held: lock.RunLock | None = None) -> Plan:
    """The profile (from the cluster's GPUs unless asked), the data (generated when none is given),
    the sweep's name and its jobs, the jobs still to run (the store read once), the per-job request
    on `shape` (the cluster as discovered once by the caller) and the checkpoint interval. Raises
    ValueError on bad input. With `held` (a run, not a dry run), the sweep folder's lock is taken
    (unless the caller took it already, from `known_name`) before the store is read, so no other
    run can commit a job between that read and this run's end (harness.lock; LockHeld when another
    run holds it)."""
    gpus = shape.gpus if shape is not None else _local_gpus()
    profile_name, why = choose_profile(spec, gpus)
    spec = spec.replace(profile=profile_name)
    synthetic = None
    if spec.dataset == "synthetic":
        from harness.worker import SyntheticData  # start-up time: it imports ray; every sub-command imports this module

        image_size = int({**profile(profile_name), **spec.overrides}.get("image_size", 256))
        spec = spec.replace(data_root=spec.data_root or str(paths.synthetic_data_dir(args.results, image_size)))
        synthetic = SyntheticData(spec.data_root or "", image_size, DATA_SEED, spec.categories)
    # Flags that change the experiment add a hash to a derived name: same flags, same folder.
    spec = spec.replace(name=known_name(args, spec))
    configs = expand(spec)
    check_generated_counts(spec.dataset, configs)  # before any job: the generated set's size is known
    if args.artefacts_dir:
        configs = [c.replace(out_dir=str(Path(args.artefacts_dir).resolve())) for c in configs]
    if args.step_mode:
        configs = [c.replace(step_mode=args.step_mode) for c in configs]
    name = spec.name or ""
    if held is not None:
        held.take(paths.sweep_dir(args.results, name))
    # The jobs the driver will run (the one skip rule, harness.store.to_run); the only read of the store.
    runs = store.plan_run(
        args.results, name, (c.job_id for c in configs), force=args.force, retry_failed=args.retry_failed,
        accept_revisions=accepted_revisions(args),
    )  # fmt: skip
    plan = Plan(spec, name, tuple(configs), profile_name, why, synthetic, shape, None, gpus, runs)
    plan = replace(
        plan, checkpoint_every=checkpoint_every(args, profile_name, configs), lock_warning=held.warning if held else ""
    )
    return _sized(plan, shape, args.gpu_memory_gb) if shape is not None else plan


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


def checkpoint_every(args: argparse.Namespace, profile_name: str, configs: Sequence[JobConfig]) -> int:
    """--checkpoint-every, or the profile's default for the sweep's step count (harness.checkpoints)."""
    if args.checkpoint_every is None:
        return checkpoints.default_every(profile_name, max((c.steps for c in configs), default=0))
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be >= 0 (0 = off), got {args.checkpoint_every}")
    return int(args.checkpoint_every)
