"""The `run`, `status` and `report` sub-commands. `run` resolves a plan from the flags, the YAML
and the cluster, prints a banner, and executes it on Ray with a live view (harness.live); `status`
and `report` read Parquet alone and never import Ray.

Exit status: 0 every job ok, 1 some job failed, 2 bad input, a failed preflight or a sweep folder
another run is writing (see harness.lock), 130 Ctrl-C, 143 SIGTERM (handled like Ctrl-C; see
harness.signals).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import checkpoints, lock, packing, report, revisions, signals, store
from harness.cli_checks import check_local_inputs, warn_caveats
from harness.cluster import Cluster, JobRequest
from harness.live import LiveView
from harness.packing import Estimate, Packing
from harness.ray_quiet import local_cluster_note
from harness.sweep import (
    SweepSpec,
    describe_variant,
    dump_sweep,
    expand,
    load_sweep,
    parse_ablations,
    parse_categories,
    parse_seeds,
    parse_variants,
    select_variants,
    spec_from_dict,
    sweep_name,
    variant_profile,
)
from memseg.cli_errors import UserError, image_size, non_negative_float, non_negative_int, positive_float, positive_int
from memseg.config import EVAL_RESOLUTIONS, PROFILES, STEP_MODES, JobConfig, profile
from memseg.data.registry import DATASET_KINDS, get_dataset

if TYPE_CHECKING:
    from harness.worker import SyntheticData

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
DATA_SEED = 0  # the generated data set is the same for every job seed

# Ray's local node binds its ports to the machine's address unless told it is a one-machine
# cluster; this variable (read when ray is imported) keeps a local run on 127.0.0.1.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a sweep of MemSeg jobs on Ray (resumes: finished jobs are skipped)",
        description="Expand categories x seeds x ablations (x recipe variants) into jobs, run each in its own Ray actor, "
        "write one Parquet row per job under RESULTS/<sweep>/ and print the tables.",
    )
    _add_what_arguments(run)
    _add_where_flags(run)
    run.set_defaults(func=cmd_run)
    _register_readers(subparsers)


def _add_what_arguments(run: argparse.ArgumentParser) -> None:
    """`run`'s flags that say what to run: the jobs and the recipe they follow."""
    what = run.add_argument_group("what to run (flags override the --sweep file)")
    which = what.add_mutually_exclusive_group()
    which.add_argument("--all-categories", action="store_true", help="every category of the dataset (MVTec AD's 15 by default)")
    which.add_argument("--categories", help="comma-separated categories, or 'all'")
    what.add_argument("--seeds", help="comma-separated seeds (default 0)")
    what.add_argument("--ablations", help="comma-separated ablations or 'all' (default full)")
    what.add_argument("--variants", help="comma-separated recipe variants of the --sweep file to run (default: all of them)")
    what.add_argument("--sweep", type=Path, help="a sweep file, e.g. jobs/paper.yaml")
    what.add_argument("--name", help="sweep name = results folder (default: from the file, or <profile>-<dataset>)")
    what.add_argument("--profile", choices=sorted(PROFILES), help="default: paper when the cluster has GPUs, else smoke")
    what.add_argument("--steps", type=positive_int, help="training steps (overrides the profile)")
    what.add_argument("--image-size", type=image_size, help="image size in pixels, a multiple of 32")
    what.add_argument("--backbone-weights", help="imagenet | none | path to a ResNet18 state dict")
    what.add_argument("--texture-dir", help="DTD-style folder of anomaly-source textures (default: procedural)")
    what.add_argument("--memory-size", type=positive_int, help="memory bank size (default: per category, memseg/categories.py)")
    what.add_argument("--di-scale", type=positive_float, help="DI multiplier (default: per category)")
    what.add_argument("--feature-scale", type=positive_float, help="multiplier of the features beside DI (default: per category)")
    what.add_argument("--foreground-mask", choices=("on", "off"), help="restrict anomalies to the object (default: per category)")
    what.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile each job's model (pays off over thousands of GPU steps)",
    )
    what.add_argument("--eval-resolution", choices=EVAL_RESOLUTIONS, help="pixel metrics at the model's size or each mask's own")
    data = run.add_argument_group("data")
    data.add_argument("--data-root", help="data set root, seen at this path on every node (default: generated data)")
    data.add_argument("--dataset", choices=DATASET_KINDS, help="default: mvtec with --data-root, else synthetic")


def _register_readers(subparsers: argparse._SubParsersAction) -> None:
    """`status` and `report`: they read Parquet only and never start Ray."""
    status = subparsers.add_parser("status", help="done / failed / pending jobs per sweep (no Ray)")
    status.add_argument("--results", type=Path, default=Path("results"))
    status.add_argument("--sweep", help="only this sweep")
    status.set_defaults(func=cmd_status)

    rep = subparsers.add_parser("report", help="print the result tables from the Parquet files (no Ray)")
    rep.add_argument("--results", type=Path, default=Path("results"))
    rep.add_argument("--sweep", help="only this sweep")
    rep.add_argument("--markdown", action="store_true", help="Markdown instead of terminal tables")
    rep.add_argument(
        "--price-per-gpu-hour", type=non_negative_float, metavar="P", help="add a cost column (GPU-hours x P) to the summary"
    )
    rep.add_argument(
        "--by-revision",
        action="store_true",
        help="show the results of each revision as their own tables (default: rows of several revisions are refused)",
    )
    rep.add_argument(
        "--html",
        nargs="?",
        const="",
        metavar="PATH",
        help="also write a self-contained HTML report (default RESULTS/<sweep>/report.html)",
    )
    rep.add_argument("--curves", action="store_true", help="also a training-loss sparkline per job (harness.curves_view)")
    rep.set_defaults(func=cmd_report)


def _add_where_flags(run: argparse.ArgumentParser) -> None:
    """The `run` flags that say where and how jobs run (not what they compute)."""
    where = run.add_argument_group("where and how")
    where.add_argument("--results", type=Path, default=Path("results"), help="results root (default ./results)")
    where.add_argument("--address", help="Ray cluster to use: auto, HOST:PORT or ray://HOST:10001 (default: start one here)")
    where.add_argument("--gpus-per-job", type=non_negative_float, help="GPUs per job (default 1 if the cluster has GPUs, else 0)")
    where.add_argument(
        "--jobs-per-gpu",
        type=_jobs_per_gpu,
        metavar="K|auto",
        help="share each GPU between K jobs (1/K GPU each); auto: as many as the card's memory holds for the "
        f"profile's measured peak, at most {packing.MAX_AUTO}; replaces --gpus-per-job",
    )
    where.add_argument(
        "--gpu-memory-gb",
        type=positive_float,
        metavar="GB",
        help="memory of each GPU, for --jobs-per-gpu (default: from Ray's accelerator type when known)",
    )
    where.add_argument(
        "--price-per-gpu-hour", type=non_negative_float, metavar="P", help="add a cost column (GPU-hours x P) to the summary"
    )
    where.add_argument(
        "--cpus-per-job", type=non_negative_float, help="CPUs per job (default: the job's share of a GPU node, or 1)"
    )
    where.add_argument("--max-retries", type=non_negative_int, help="new actors for a job whose worker died (default 2)")
    where.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        metavar="N",
        help="keep each job's training state every N steps under RESULTS/<sweep>/checkpoints/; a retried "
        "or resumed job starts there (default: a tenth of the steps for the paper profile, 0 = off otherwise)",
    )
    where.add_argument("--artefacts-dir", help="where jobs save weights; must be shared with this machine (default: not saved)")
    where.add_argument(
        "--step-mode",
        choices=STEP_MODES,
        help="how each job runs its training steps: eager, auto (a CUDA graph on CUDA when capture works, else "
        "eager), graph or compile; does not change job ids (default: the sweep file's, else eager)",
    )
    where.add_argument("--force", action="store_true", help="re-run jobs that are already done")
    where.add_argument("--retry-failed", action="store_true", help="re-run jobs that failed before")
    where.add_argument(
        "--accept-revision",
        type=_revisions,
        action="append",
        default=[],
        metavar="N[,N]",
        help="keep results of revision N as done (default: a result of another revision than this code's is "
        "re-run; docs/results.md); repeatable",
    )
    where.add_argument("--dry-run", action="store_true", help="print the jobs and exit without running them")
    where.add_argument("--job-fn", help=argparse.SUPPRESS)  # tests: module:function (default: the driver's)
    where.add_argument("--data-check", help=argparse.SUPPRESS)  # tests: module:function; "" = none


def _revisions(text: str) -> tuple[int, ...]:
    """--accept-revision: "1" or "1,2"."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected revision numbers >= 1 such as 1 or 1,2, got {text!r}")
    return values


def accepted_revisions(args: argparse.Namespace) -> tuple[int, ...]:
    """Every revision given with --accept-revision (repeated or comma separated)."""
    return tuple(sorted({r for group in getattr(args, "accept_revision", None) or () for r in group}))


def _jobs_per_gpu(text: str) -> int | str:
    try:
        return packing.parse_jobs_per_gpu(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer >= 1, got {text!r}") from None


# ---------------------------------------------------------------------------------------------
# run


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """JobConfig overrides given as flags."""
    pairs = {
        "steps": args.steps,
        "image_size": args.image_size,
        # Paths made absolute: a job's actor does not run in this directory.
        "backbone_weights": (
            str(Path(args.backbone_weights).resolve())
            if args.backbone_weights and args.backbone_weights not in ("imagenet", "none")
            else args.backbone_weights
        ),
        "texture_dir": str(Path(args.texture_dir).resolve()) if args.texture_dir else None,
        "compile": args.compile,
        "memory_size": args.memory_size,
        "di_scale": args.di_scale,
        "feature_scale": args.feature_scale,
        "foreground_mask": None if args.foreground_mask is None else args.foreground_mask == "on",
        "eval_resolution": args.eval_resolution,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def build_spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep from the --sweep file (if any) with the flags on top. The profile may stay None
    (chosen from the cluster later)."""
    spec = load_sweep(args.sweep) if args.sweep else SweepSpec()
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
    if args.dataset:
        changes["dataset"] = args.dataset
    elif args.data_root and not args.sweep:
        changes["dataset"] = "mvtec"
    overrides = cli_overrides(args)
    if overrides:
        changes["overrides"] = {**spec.overrides, **overrides}
    spec = spec.replace(**changes)
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
    expand(spec.replace(profile=spec.profile or "paper"))  # bad overrides fail here, before Ray starts
    return spec


def _local_gpus() -> int:
    """GPUs on this machine, without starting Ray (for --dry-run)."""
    import torch

    return int(torch.cuda.device_count())


def choose_profile(spec: SweepSpec, cluster_gpus: float) -> tuple[str, str]:
    """The profile in force and why."""
    if spec.profile is not None:
        return spec.profile, "as asked"
    if cluster_gpus > 0:
        return "paper", f"the cluster has {cluster_gpus:g} GPU(s); --profile smoke for a quick check"
    return "smoke", "the cluster has no GPU (the paper recipe needs one); --profile paper to insist"


def _consoles() -> tuple[Console, Console]:
    """stdout and stderr consoles; wide when not a terminal (logs of `ray job submit`, pipes), so
    the tables are not squeezed to 80 columns."""
    out, err = Console(log_path=False), Console(stderr=True, log_path=False)
    for console in (out, err):
        if not console.is_terminal:
            console.width = max(console.width, 160)
    return out, err


def _error(errors: Console, message: object, prefix: str = "error:") -> int:
    errors.print(f"[red]{prefix}[/] {message}", markup=True, highlight=False)
    return EXIT_BAD_INPUT


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
    checkpoint_every: int = 0  # steps between a job's checkpoints (0: none)
    packing: Packing | None = None  # --jobs-per-gpu as resolved on the cluster
    estimate: Estimate | None = None  # training wall time of the jobs still to run
    to_run: store.ToRun | None = None  # which jobs run and which are kept (harness.store.to_run)

    @property
    def gpus_per_job(self) -> float | None:
        """What each job's actor asks for: 1/K with --jobs-per-gpu K, else --gpus-per-job (or None: sized by the cluster)."""
        return self.packing.gpus_per_job if self.packing is not None else self.spec.gpus_per_job


def cmd_run(args: argparse.Namespace) -> int:
    """`run`: resolve the plan, print the banner, execute it (or list its jobs on --dry-run)."""
    console, errors = _consoles()
    try:
        spec = build_spec(args)
    except ValueError as err:
        return _error(errors, err)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address:  # before Ray starts; a dry run only lists the jobs: it reads no data
        try:
            check_local_inputs(spec, data=args.data_check is None and not args.dry_run)
        except UserError as err:
            return _error(errors, err, "preflight failed, no job started:")
    if not address and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    import ray  # after the loopback setting

    from harness import cluster

    use_ray = bool(not args.dry_run or address or ray.is_initialized())
    try:
        # SIGTERM is Ctrl-C from here on: installed after ray.init, which sets a handler of its own.
        with cluster.session(args.address) if use_ray else contextlib.nullcontext(), signals.sigterm_as_interrupt():
            try:
                plan = resolve_plan(args, spec, cluster.discover() if use_ray else None)  # a damaged file is named here
            except ValueError as err:
                return _error(errors, err)
            print_banner(console, plan, args)
            warn_caveats(errors, plan.configs)
            if args.dry_run:
                console.print(_job_table(plan))
                return EXIT_OK
            return execute(args, plan, console, errors)
    except cluster.PreflightError as err:
        return _error(errors, err, "preflight failed, no job started:")
    except lock.LockHeld as err:
        return _error(errors, err)
    except KeyboardInterrupt as err:
        errors.print("interrupted: finished jobs are saved; run the same command again to resume")
        return _interrupted_status(err)


def _interrupted_status(err: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (harness.signals)."""
    return signals.EXIT_TERMINATED if signals.was_terminated(err) else EXIT_INTERRUPTED


def resolve_plan(args: argparse.Namespace, spec: SweepSpec, shape: Cluster | None) -> Plan:
    """The profile (from the cluster's GPUs unless asked), the data (generated when none is given),
    the sweep's name and its jobs, the per-job request and the checkpoint interval. Raises
    ValueError on bad input."""
    from harness import cluster
    from harness.worker import SyntheticData

    gpus = shape.gpus if shape is not None else _local_gpus()
    profile_name, why = choose_profile(spec, gpus)
    spec = spec.replace(profile=profile_name)
    synthetic = None
    if spec.dataset == "synthetic":
        image_size = int({**profile(profile_name), **spec.overrides}.get("image_size", 256))
        root = spec.data_root or str((args.results / "_data" / f"synthetic-{image_size}").resolve())
        spec = spec.replace(data_root=root)
        synthetic = SyntheticData(root, image_size, DATA_SEED)
    # Flags that change the experiment add a hash to a derived name: same flags, same folder.
    spec = spec.replace(name=args.name or sweep_name(spec, cli_overrides(args)))
    configs = expand(spec)
    if args.artefacts_dir:
        configs = [c.replace(out_dir=str(Path(args.artefacts_dir).resolve())) for c in configs]
    if args.step_mode:
        configs = [c.replace(step_mode=args.step_mode) for c in configs]
    every = checkpoint_every(args, profile_name, configs)
    name = spec.name or ""
    # The jobs the driver will run (the one skip rule, harness.store.to_run).
    runs = store.plan_run(
        args.results, name, (c.job_id for c in configs), force=args.force, retry_failed=args.retry_failed,
        accept_revisions=accepted_revisions(args),
    )  # fmt: skip
    request, packed, estimate = None, None, None
    if shape is not None:
        if spec.jobs_per_gpu is not None:  # refused here when it cannot fit
            packed = packing.resolve(spec.jobs_per_gpu, profile_name, configs, shape, args.gpu_memory_gb)
        gpus_per_job = packed.gpus_per_job if packed is not None else spec.gpus_per_job
        with contextlib.suppress(cluster.PreflightError):  # the driver says why, before any job
            request = cluster.default_request(shape.nodes, shape.node_types, gpus_per_job, spec.cpus_per_job)
        if request is not None:
            running = set(runs.run)
            estimate = packing.estimate(profile_name, [c for c in configs if c.job_id in running], request, shape, packed)
    return Plan(spec, name, tuple(configs), profile_name, why, synthetic, shape, request, gpus, every, packed, estimate, runs)


def checkpoint_every(args: argparse.Namespace, profile_name: str, configs: Sequence[JobConfig]) -> int:
    """--checkpoint-every, or the profile's default for the sweep's step count (harness.checkpoints)."""
    if args.checkpoint_every is None:
        return checkpoints.default_every(profile_name, max((c.steps for c in configs), default=0))
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be >= 0 (0 = off), got {args.checkpoint_every}")
    return int(args.checkpoint_every)


def print_banner(console: Console, plan: Plan, args: argparse.Namespace) -> None:
    """What is about to run, on what data, on which cluster, with which resources."""
    console.print(f"[bold]sweep[/] {plan.name}: {len(plan.configs)} jobs -> {args.results / plan.name}")
    console.print(f"[bold]profile[/] {plan.profile} ({plan.why})")
    if plan.to_run is not None:
        stale = plan.to_run.describe_stale()
        console.print(
            f"[bold]revision[/] {plan.to_run.revision} (docs/results.md)" + (f"; {escape(stale)}" if stale else ""),
            highlight=False,
        )
    if plan.spec.variants:
        shown = "; ".join(f"{name} ({describe_variant(plan.spec, name)})" for name in plan.spec.variants)
        console.print(f"[bold]variants[/] {escape(shown)}", highlight=False)
    kept = args.results / plan.name / checkpoints.FOLDER
    console.print(
        f"[bold]checkpoints[/] every {plan.checkpoint_every} steps, kept under {kept}"
        if plan.checkpoint_every
        else "[bold]checkpoints[/] off (--checkpoint-every N to keep a job's state every N steps)"
    )
    if plan.synthetic is not None:
        console.print(
            f"[bold]data[/] generated MVTec-layout set at {plan.spec.data_root} "
            "(made once, then reused; --data-root for real data)"
        )
    elif plan.spec.data_root is None:
        console.print(f"[bold]data[/] {plan.spec.dataset}: no --data-root given (a dry run reads no data; a run needs it)")
    else:
        console.print(f"[bold]data[/] {plan.spec.dataset} at {plan.spec.data_root}")
    if plan.cluster is None:
        console.print(f"[bold]cluster[/] not started (dry run); this machine has {plan.gpus:g} GPU(s)")
        if plan.spec.jobs_per_gpu is not None:
            console.print(f"[bold]sharing[/] --jobs-per-gpu {plan.spec.jobs_per_gpu} (sized and checked when the cluster starts)")
        return
    head = args.address or os.environ.get("RAY_ADDRESS") or "local"
    console.print(f"[bold]cluster[/] {head}: {plan.cluster.describe()}")
    if head == "local":
        console.print(f"[bold]ray[/] {local_cluster_note()}", highlight=False)
    if plan.request is not None:
        console.print(f"[bold]resources[/] {plan.request.describe()}")
    if plan.packing is not None:
        console.print(f"[bold]sharing[/] {escape(plan.packing.describe())}", highlight=False)
    if plan.estimate is not None:
        console.print(f"[bold]estimate[/] {escape(plan.estimate.describe())}", highlight=False)


def execute(args: argparse.Namespace, plan: Plan, console: Console, errors: Console) -> int:
    """Hold the sweep folder's lock, run the sweep with the live view, print the summary."""
    from harness import driver

    # One run per sweep folder at a time; held until this process exits in any way.
    with lock.hold(store.sweep_dir(args.results, plan.name)) as held:
        if held.warning:
            errors.print(f"[yellow]warning:[/] {held.warning}", markup=True, highlight=False)
        _warn_if_data_moved(errors, args.results, plan.name, plan.spec)
        store.save_spec(args.results, plan.name, dump_sweep(plan.spec))
        view = LiveView(console, steps={c.job_id: c.steps for c in plan.configs})
        try:
            with view.live():
                outcome = driver.run_sweep(
                    plan.configs, plan.name, args.results, job_fn=args.job_fn or driver.DEFAULT_JOB_FN,
                    gpus_per_job=plan.gpus_per_job, cpus_per_job=plan.spec.cpus_per_job,
                    max_retries=plan.spec.max_retries, on_event=view.on_event, profile=_profiles(plan),
                    force=args.force, retry_failed=args.retry_failed, data_check=_data_check(args, driver.DEFAULT_DATA_CHECK),
                    synthetic=plan.synthetic, checkpoint_every=plan.checkpoint_every,
                    accept_revisions=accepted_revisions(args),
                )  # fmt: skip
        except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the driver has killed the running actors; committed results stay
            _print_interrupted(errors, args.results, plan.name, plan.configs, err, accepted_revisions(args))
            return _interrupted_status(err)
    # Never averaged across revisions: kept results of an accepted revision get tables of their own.
    _print_summary(console, args.results, plan.name, markdown=False, price=args.price_per_gpu_hour, by_revision=True)
    console.print(
        f"ran {len(outcome.ran)} job(s) in {outcome.wall_s:.1f} s: {len(outcome.succeeded)} ok, {len(outcome.failed)} failed, "
        f"{outcome.retries} retried; {len(outcome.done_before)} were done before"
    )
    if outcome.stale:
        console.print(f"{len(outcome.stale)} of them replaced a result of another revision (see the banner)", highlight=False)
    if outcome.resumed:
        console.print(
            f"{len(outcome.resumed)} launch(es) started from a checkpoint, skipping "
            f"{sum(step for _, step in outcome.resumed)} step(s): " + ", ".join(f"{j} at step {s}" for j, s in outcome.resumed)
        )
    if outcome.failed_before:
        console.print(
            f"[yellow]{len(outcome.failed_before)} job(s) failed in an earlier run and were not re-run; "
            "--retry-failed to re-run them[/]"
        )
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _profiles(plan: Plan) -> str | dict[str, str]:
    """The profile each row records: the sweep's, or per job its variant's base profile."""
    if not plan.spec.variants:
        return plan.profile
    return {c.job_id: variant_profile(plan.spec, c.variant) for c in plan.configs}


def _data_check(args: argparse.Namespace, default: str) -> str | None:
    """--data-check: the default check when not given, none when given empty."""
    return default if args.data_check is None else (args.data_check or None)


def _warn_if_data_moved(errors: Console, results: Path, name: str, spec: SweepSpec) -> None:
    """Job ids leave paths out (the same data resumes on any mount point), so results made from
    data at another path count as done: say so, in case it is other data."""
    text = store.read_spec(results, name)
    try:
        before = (yaml.safe_load(text) or {}).get("data_root") if text else None
    except (yaml.YAMLError, AttributeError):
        return
    if before and spec.data_root and before != spec.data_root and store.job_statuses(results, name):
        errors.print(
            f"[yellow]warning:[/] the results in {store.sweep_dir(results, name)} were made from data at {before}; "
            f"this run reads {spec.data_root}. Jobs done there are not re-run (a job id leaves paths out); "
            "if this is other data, use another --name or --force.",
            markup=True, highlight=False,
        )  # fmt: skip


def _print_interrupted(
    errors: Console,
    results: Path,
    name: str,
    configs: Sequence[JobConfig],
    cause: BaseException | None = None,
    accept_revisions: Sequence[int] = (),
) -> None:
    """What an interrupted run leaves: the jobs committed (kept), those that are not (or whose
    result is of another revision: the skip rule, harness.store.to_run), and those that will resume
    from a checkpoint."""
    tally = store.plan_run(results, name, [c.job_id for c in configs], accept_revisions=accept_revisions)
    pending = tally.run  # failed jobs are not in it: they stay failed without --retry-failed
    shown = ", ".join(pending[:10]) + (f" and {len(pending) - 10} more" if len(pending) > 10 else "")
    kept = [j for j in pending if checkpoints.checkpoint_path(results, name, j).exists()]
    what = "terminated (SIGTERM)" if signals.was_terminated(cause) else "interrupted"
    errors.print(
        f"{what}: {len(tally.done)} of {len(configs)} job(s) done (kept in {store.sweep_dir(results, name)}), "
        f"{len(tally.failed)} failed, {len(pending)} pending" + (f": {shown}" if pending else "") + ". "
        "Running jobs were cancelled; run the same command again to resume (done jobs are not re-run"
        + (f"; {len(kept)} pending job(s) resume from their checkpoint" if kept else "")
        + ").",
        highlight=False,
    )


def _job_table(plan: Plan) -> Table:
    """The jobs of a dry run; a variant column (and each variant's own profile) when the sweep has variants."""
    variants = bool(plan.spec.variants)
    table = Table(title="jobs (dry run)")
    for name in ("job id", "category", "seed", "ablation", *(("variant",) if variants else ()), "profile", "done?"):
        table.add_column(name)
    runs = plan.to_run or store.ToRun((), (), (), (), store.current_revision())
    marks = dict.fromkeys(runs.done, "yes") | dict.fromkeys(runs.failed, "failed")
    marks |= {j: f"revision {r}: re-run" for j, r in runs.stale}
    for c in plan.configs:
        which = (c.variant,) if variants else ()
        prof = variant_profile(plan.spec, c.variant)
        table.add_row(c.job_id, c.category, str(c.seed), c.ablation, *which, prof, marks.get(c.job_id, "no"))
    return table


# ---------------------------------------------------------------------------------------------
# status and report (Parquet only)


def _pick_sweeps(results: Path, sweep: str | None, console: Console, errors: Console) -> list[str] | int:
    """The sweeps to show (all, or the one named), or the exit status when there is none to show."""
    sweeps = store.list_sweeps(results)
    if sweep is not None and sweep not in sweeps:
        errors.print(f"no sweep {sweep!r} under {results}; found: {', '.join(sweeps) or 'none'}", highlight=False)
        return EXIT_BAD_INPUT
    if not sweeps:
        console.print(f"no sweeps under {results}")
        return EXIT_OK
    return sweeps if sweep is None else [sweep]


def cmd_status(args: argparse.Namespace) -> int:
    console, errors = _consoles()
    sweeps = _pick_sweeps(args.results, args.sweep, console, errors)
    if isinstance(sweeps, int):
        return sweeps
    table = Table(title=f"sweeps under {args.results}")
    specs = {sweep: _spec_jobs(args.results, sweep, errors) for sweep in sweeps}
    variants = any(v for *_, v in specs.values())  # a column only when some sweep has recipe variants
    left = ("sweep", "profile", "dataset", *(("variants",) if variants else ()))
    for name in (*left, "jobs", "done", "failed", "pending", "other results", "results by revision"):
        table.add_column(name, justify="left" if name in left else "right")
    failures: list[tuple[str, str, str]] = []
    current, stale = store.current_revision(), 0
    for sweep in sweeps:
        states = store.job_states(args.results, sweep)
        statuses = {job_id: state.status for job_id, state in states.items()}
        ids, prof, dataset, names = specs[sweep]
        tally = store.Tally.of(ids or sorted(statuses), statuses)
        other = len(set(statuses) - set(ids or statuses))
        counts = (tally.total, len(tally.done), len(tally.failed), len(tally.pending), other)
        by_revision = pd.Series([s.revision for s in states.values()], dtype="int64").value_counts().sort_index()
        stale += int(by_revision.drop(current, errors="ignore").sum())
        table.add_row(
            sweep, prof, dataset, *((", ".join(names),) if variants else ()), *map(str, counts),
            ", ".join(f"{r}: {n}" for r, n in by_revision.items()),
        )  # fmt: skip
        if tally.failed:
            rows = store.load_results(args.results, sweep)
            for r in store.records(rows[rows["job_id"].isin(tally.failed)]):
                failures.append((sweep, str(r.job_id), str(r.error).splitlines()[0][:160] if r.error else ""))
    if stale:
        table.caption = (
            f"{stale} result(s) are of another revision than this code's ({current}): `harness run` re-runs them "
            "unless --accept-revision N (docs/results.md)"
        )
    console.print(table)
    if failures:
        ftable = Table(title="failed jobs (--retry-failed re-runs them)")
        for name in ("sweep", "job", "error"):
            ftable.add_column(name)
        for row in failures:
            ftable.add_row(*row)
        console.print(ftable)
    return EXIT_OK


def _spec_jobs(results: Path, sweep: str, errors: Console) -> tuple[list[str], str, str, tuple[str, ...]]:
    """The job ids, profile, dataset and variant names of a sweep's sweep.yaml; no ids (and "?") without one."""
    text = store.read_spec(results, sweep)
    if text is None:
        return [], "?", "?", ()
    try:
        spec = spec_from_dict(yaml.safe_load(text))
        return [c.job_id for c in expand(spec)], spec.profile or "?", spec.dataset, tuple(spec.variants)
    except (ValueError, yaml.YAMLError) as err:
        errors.print(f"{sweep}: cannot read its sweep.yaml ({err}); counting its results only", highlight=False)
        return [], "?", "?", ()


def _print_summary(
    console: Console, results: Path, sweep: str, markdown: bool, price: float | None = None, by_revision: bool = False
) -> None:
    """The sweep's tables; rows of several revisions are never averaged together (harness.revisions):
    one set of tables per revision with `by_revision`, else MixedRevisions."""
    rows = store.load_results(results, sweep)
    groups = revisions.split(rows, by_revision, f"sweep {sweep!r}")
    for revision, group in groups:
        label = sweep if len(groups) == 1 else f"{sweep} · revision {revision}"
        for table in report.summary_tables(group, label, price):
            if markdown:
                console.out(report.to_markdown(table))
            else:
                console.print(report.to_rich(table))
    dirty = revisions.dirty_warning(rows)
    if dirty and markdown:
        console.out(f"> **warning:** {dirty}\n")
    elif dirty:
        console.print(f"[yellow]warning:[/] {escape(dirty)}", highlight=False)


def cmd_report(args: argparse.Namespace) -> int:
    console, errors = _consoles()
    sweeps = _pick_sweeps(args.results, args.sweep, console, errors)
    if isinstance(sweeps, int):
        return sweeps
    if args.html and len(sweeps) > 1:
        errors.print(
            f"--html {args.html} names one file but there are {len(sweeps)} sweeps: add --sweep NAME, "
            "or give --html alone for RESULTS/<sweep>/report.html each",
            highlight=False,
        )
        return EXIT_BAD_INPUT
    try:
        for sweep in sweeps:  # every sweep is checked before anything is printed or written
            revisions.split(store.load_results(args.results, sweep), args.by_revision, f"sweep {sweep!r}")
    except revisions.MixedRevisions as err:
        return _error(errors, err)
    for sweep in sweeps:
        _print_summary(console, args.results, sweep, args.markdown, args.price_per_gpu_hour, args.by_revision)
        if args.curves:
            from harness import curves_view

            console.print(*curves_view.renderables(args.results, sweep))
        if args.html is not None:
            _write_html(args, sweep, errors)
    return EXIT_OK


def _write_html(args: argparse.Namespace, sweep: str, errors: Console) -> None:
    """The sweep's HTML report; with --by-revision one page per revision, named <stem>-revision-N.html."""
    from harness import report_html  # matplotlib only when asked for

    path = Path(args.html) if args.html else report_html.default_path(args.results, sweep)
    found = revisions.counts(store.load_results(args.results, sweep))
    pages = [(None, path)] if len(found) <= 1 else [(r, path.with_name(f"{path.stem}-revision-{r}{path.suffix}")) for r in found]
    for revision, page in pages:
        written = report_html.write_report(args.results, sweep, page, args.price_per_gpu_hour, revision)
        errors.print(f"HTML report of {sweep}: {written} ({written.stat().st_size / 1024:.0f} KB)", highlight=False)
