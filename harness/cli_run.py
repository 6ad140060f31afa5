"""The `run` sub-command: resolve a plan from the flags, the YAML and the cluster (harness.plan),
print a banner, and execute it on Ray with a live view (harness.live). The cluster is discovered
once and the store read once, here, and both handed to the driver.

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
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import cluster, lock, packing, paths, signals, store
from harness.cli_checks import check_local_inputs, warn_caveats
from harness.cli_results import EXIT_OK, consoles, error, print_summary
from harness.live import LiveView
from harness.plan import Plan, accepted_revisions, build_spec, resolve_plan
from harness.ray_quiet import local_cluster_note
from harness.sweep import describe_variant, dump_sweep, parse_jobs_per_gpu, variant_profile
from memseg.cli_errors import UserError, non_negative_float, non_negative_int, positive_float
from memseg.cli_recipe import add_recipe_flags
from memseg.config import PROFILES, STEP_MODES, JobConfig
from memseg.data.registry import DATASET_KINDS

EXIT_FAILED, EXIT_INTERRUPTED = 1, 130

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
    add_recipe_flags(what)  # the same recipe flags as `python -m memseg train` (memseg.cli_recipe)
    data = run.add_argument_group("data")
    data.add_argument("--data-root", help="data set root, seen at this path on every node (default: generated data)")
    data.add_argument("--dataset", choices=DATASET_KINDS, help="default: mvtec with --data-root, else synthetic")


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


def _jobs_per_gpu(text: str) -> int | str:
    try:
        return parse_jobs_per_gpu(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer >= 1, got {text!r}") from None


def cmd_run(args: argparse.Namespace) -> int:
    """`run`: resolve the plan, print the banner, execute it (or list its jobs on --dry-run)."""
    console, errors = consoles()
    try:
        spec = build_spec(args)
    except ValueError as err:
        return error(errors, err)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address:  # before Ray starts; a dry run only lists the jobs: it reads no data
        try:
            check_local_inputs(spec, data=args.data_check is None and not args.dry_run)
        except UserError as err:
            return error(errors, err, "preflight failed, no job started:")
    if not address and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    import ray  # here, not at the top: after the loopback setting, and only for `run`

    use_ray = bool(not args.dry_run or address or ray.is_initialized())
    try:
        # SIGTERM is Ctrl-C from here on: installed after ray.init, which sets a handler of its own.
        with cluster.session(args.address) if use_ray else contextlib.nullcontext(), signals.sigterm_as_interrupt():
            try:
                # The one discovery of the cluster and the one read of the store of this run (harness.plan).
                plan = resolve_plan(args, spec, cluster.discover() if use_ray else None)  # a damaged file is named here
            except ValueError as err:
                return error(errors, err)
            print_banner(console, plan, args)
            warn_caveats(errors, plan.configs)
            if args.dry_run:
                console.print(_job_table(plan))
                return EXIT_OK
            return execute(args, plan, console, errors)
    except cluster.PreflightError as err:
        return error(errors, err, "preflight failed, no job started:")
    except lock.LockHeld as err:
        return error(errors, err)
    except KeyboardInterrupt as err:
        errors.print("interrupted: finished jobs are saved; run the same command again to resume")
        return _interrupted_status(err)


def _interrupted_status(err: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (harness.signals)."""
    return signals.EXIT_TERMINATED if signals.was_terminated(err) else EXIT_INTERRUPTED


def print_banner(console: Console, plan: Plan, args: argparse.Namespace) -> None:
    """What is about to run, on what data, on which cluster, with which resources."""
    console.print(f"[bold]sweep[/] {plan.name}: {len(plan.configs)} jobs -> {paths.sweep_dir(args.results, plan.name)}")
    console.print(f"[bold]profile[/] {plan.profile} ({plan.why})")
    stale = plan.to_run.describe_stale()
    console.print(
        f"[bold]revision[/] {plan.to_run.revision} (docs/results.md)" + (f"; {escape(stale)}" if stale else ""),
        highlight=False,
    )
    if plan.spec.variants:
        shown = "; ".join(f"{name} ({describe_variant(plan.spec, name)})" for name in plan.spec.variants)
        console.print(f"[bold]variants[/] {escape(shown)}", highlight=False)
    kept = paths.checkpoints_dir(args.results, plan.name)
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
    from harness import driver  # start-up time: it imports ray at the top; a dry run never needs it

    # One run per sweep folder at a time; held until this process exits in any way.
    with lock.hold(paths.sweep_dir(args.results, plan.name)) as held:
        if held.warning:
            errors.print(f"[yellow]warning:[/] {held.warning}", markup=True, highlight=False)
        _warn_if_data_moved(errors, args.results, plan)
        store.save_spec(args.results, plan.name, dump_sweep(plan.spec))
        view = LiveView(console, steps={c.job_id: c.steps for c in plan.configs})
        try:
            with view.live():
                outcome = driver.run_sweep(
                    plan.configs, plan.name, args.results, job_fn=args.job_fn or driver.DEFAULT_JOB_FN,
                    gpus_per_job=plan.gpus_per_job, cpus_per_job=plan.spec.cpus_per_job,
                    max_retries=plan.spec.max_retries, on_event=view.on_event, profile=plan.profiles(),
                    data_check=_data_check(args, driver.DEFAULT_DATA_CHECK), synthetic=plan.synthetic,
                    checkpoint_every=plan.checkpoint_every, to_run=plan.to_run, shape=plan.cluster, request=plan.request,
                )  # fmt: skip
        except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the driver has killed the running actors; committed results stay
            _print_interrupted(errors, args.results, plan.name, plan.configs, err, accepted_revisions(args))
            return _interrupted_status(err)
    # Never averaged across revisions: kept results of an accepted revision get tables of their own.
    print_summary(console, args.results, plan.name, markdown=False, price=args.price_per_gpu_hour, by_revision=True)
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


def _data_check(args: argparse.Namespace, default: str) -> str | None:
    """--data-check: the default check when not given, none when given empty."""
    return default if args.data_check is None else (args.data_check or None)


def _warn_if_data_moved(errors: Console, results: Path, plan: Plan) -> None:
    """Job ids leave paths out (the same data resumes on any mount point), so results made from
    data at another path count as done: say so, in case it is other data."""
    name, spec = plan.name, plan.spec
    text = store.read_spec(results, name)
    try:
        before = (yaml.safe_load(text) or {}).get("data_root") if text else None
    except (yaml.YAMLError, AttributeError):
        return
    kept = plan.to_run.done or plan.to_run.failed or plan.to_run.stale
    if before and spec.data_root and before != spec.data_root and kept:
        errors.print(
            f"[yellow]warning:[/] the results in {paths.sweep_dir(results, name)} were made from data at {before}; "
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
    kept = [j for j in pending if paths.checkpoint_path(results, name, j).exists()]
    what = "terminated (SIGTERM)" if signals.was_terminated(cause) else "interrupted"
    errors.print(
        f"{what}: {len(tally.done)} of {len(configs)} job(s) done (kept in {paths.sweep_dir(results, name)}), "
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
    runs = plan.to_run
    marks = dict.fromkeys(runs.done, "yes") | dict.fromkeys(runs.failed, "failed")
    marks |= {j: f"revision {r}: re-run" for j, r in runs.stale}
    for c in plan.configs:
        which = (c.variant,) if variants else ()
        prof = variant_profile(plan.spec, c.variant)
        table.add_row(c.job_id, c.category, str(c.seed), c.ablation, *which, prof, marks.get(c.job_id, "no"))
    return table
