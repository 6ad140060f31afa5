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
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness import cluster, lock, packing, paths, signals, store, trackers
from harness.cli_checks import check_local_inputs, warn_caveats
from harness.cli_results import EXIT_OK, consoles, error
from harness.live import LiveView
from harness.plan import Plan, accepted_revisions, build_spec, known_name, resolve_plan
from harness.progress import Event
from harness.run_view import job_table, print_banner, print_interrupted, print_outcome, warn_if_data_moved
from harness.sweep import SweepSpec, dump_sweep, parse_jobs_per_gpu
from harness.trackers import TRACKERS
from harness.trackers.follow import Follower
from memseg.cli_errors import UserError, non_negative_float, non_negative_int, positive_float
from memseg.cli_recipe import add_recipe_flags
from memseg.config import PROFILES, STEP_MODES
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
    _add_watch_flags(run)
    run.set_defaults(func=cmd_run)


def _add_watch_flags(run: argparse.ArgumentParser) -> None:
    """`run`'s flags that say where else the results go while it runs (docs/watching.md)."""
    watch = run.add_argument_group("watching")
    watch.add_argument(
        "--log-to",
        choices=TRACKERS,
        help="also send each finished job to this tracker as soon as its row is committed, from this process "
        "(workers need no credentials); default stores under RESULTS/<sweep>/, no account needed",
    )
    watch.add_argument("--log-dest", metavar="PATH|URI", help="where --log-to writes (an MLflow tracking URI, or a folder)")


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
    where.add_argument(
        "--address",
        help="Ray cluster to use: auto, HOST:PORT or ray://HOST:10001 (default: start one here); with RAY_AUTH_MODE unset, "
        "a token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token is sent",
    )
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
    if args.log_to:  # a tracker that is not installed is refused before anything starts
        try:
            trackers.check_installed(args.log_to)
        except UserError as err:
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
        # The sweep folder's lock is held from before the store is read until exit (harness.lock);
        # SIGTERM is Ctrl-C from ray.init on, which sets a handler of its own.
        with (
            contextlib.ExitStack() as stack,
            _early_lock(args, spec, lock.RunLock(stack)) as held,
            cluster.session(args.address) if use_ray else contextlib.nullcontext(),
            signals.sigterm_as_interrupt(),
        ):
            try:
                # The one discovery of the cluster and the one read of the store of this run (harness.plan).
                shape = cluster.discover() if use_ray else None
                plan = resolve_plan(args, spec, shape, None if args.dry_run else held)  # a damaged file is named here
            except ValueError as err:
                return error(errors, err)
            print_banner(console, plan, args)
            warn_caveats(errors, plan.configs)
            if args.dry_run:
                console.print(job_table(plan))
                return EXIT_OK
            return execute(args, plan, console, errors)
    except cluster.PreflightError as err:
        return error(errors, err, "preflight failed, no job started:")
    except lock.LockHeld as err:
        return error(errors, err)
    except KeyboardInterrupt as err:
        errors.print("interrupted: finished jobs are saved; run the same command again to resume")
        return _interrupted_status(err)


@contextlib.contextmanager
def _early_lock(args: argparse.Namespace, spec: SweepSpec, held: lock.RunLock) -> Iterator[lock.RunLock]:
    """`held`, with the sweep folder's lock taken now when the flags name the sweep: before Ray
    starts, so a second run of a sweep being written is refused in a second (harness.plan.known_name)."""
    name = None if args.dry_run else known_name(args, spec)
    if name is not None:
        held.take(paths.sweep_dir(args.results, name))
    yield held


def _interrupted_status(err: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (harness.signals)."""
    return signals.EXIT_TERMINATED if signals.was_terminated(err) else EXIT_INTERRUPTED


def execute(args: argparse.Namespace, plan: Plan, console: Console, errors: Console) -> int:
    """Run the sweep with the live view (the caller holds the sweep folder's lock: one run per
    folder at a time, until this process exits in any way), print the summary."""
    from harness import driver  # start-up time: it imports ray at the top; a dry run never needs it

    if plan.lock_warning:
        errors.print(f"[yellow]warning:[/] {plan.lock_warning}", markup=True, highlight=False)
    warn_if_data_moved(errors, args.results, plan)
    store.save_spec(args.results, plan.name, dump_sweep(plan.spec))
    view = LiveView(console, steps={c.job_id: c.steps for c in plan.configs})
    on_event: Callable[[Event], None] = view.on_event
    if args.log_to:
        follower = Follower(
            args.log_to,
            args.results,
            plan.name,
            lambda line: view.console.log(f"[yellow]warning:[/] {escape(line)}"),
            args.log_dest or "",
        )
        on_event = _both(view.on_event, follower.on_event)
    try:
        with view.live():
            outcome = driver.run_sweep(
                plan.configs, plan.name, args.results, job_fn=args.job_fn or driver.DEFAULT_JOB_FN,
                gpus_per_job=plan.gpus_per_job, cpus_per_job=plan.spec.cpus_per_job,
                max_retries=plan.spec.max_retries, on_event=on_event, profile=plan.profiles(),
                data_check=_data_check(args, driver.DEFAULT_DATA_CHECK), synthetic=plan.synthetic,
                checkpoint_every=plan.checkpoint_every, to_run=plan.to_run, shape=plan.cluster, request=plan.request,
            )  # fmt: skip
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the driver has killed the running actors; committed results stay
        print_interrupted(errors, args.results, plan.name, plan.configs, err, accepted_revisions(args))
        return _interrupted_status(err)
    print_outcome(console, args.results, plan, outcome, args.price_per_gpu_hour, args.log_to or "")
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _both(first: Callable[[Event], None], second: Callable[[Event], None]) -> Callable[[Event], None]:
    """One event handler that calls two, in order."""

    def both(event: Event) -> None:
        first(event)
        second(event)

    return both


def _data_check(args: argparse.Namespace, default: str) -> str | None:
    """--data-check: the default check when not given, none when given empty."""
    return default if args.data_check is None else (args.data_check or None)
