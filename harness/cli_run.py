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

from rich.console import Console
from rich.markup import escape

from harness import cluster, lock, paths, signals, store, trackers
from harness.cli_checks import check_local_inputs, warn_caveats
from harness.cli_common import consoles
from harness.live import LiveView
from harness.options import DEFAULT_JOB_FN, RunOptions
from harness.plan import Plan, known_name, resolve_plan
from harness.progress import Event
from harness.run_flags import add_run_flags, spec_and_options
from harness.run_view import job_table, print_banner, print_interrupted, print_outcome, warn_if_data_moved
from harness.sweep import SweepSpec, dump_sweep
from harness.trackers.follow import Follower
from memseg.cli_errors import UserError, user_error

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130

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
    add_run_flags(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """`run`: resolve the plan, print the banner, execute it (or list its jobs on --dry-run). A
    mistake is raised as a UserError, which `run_command` shows as one line (exit 2)."""
    console, errors = consoles()
    try:
        spec, options = spec_and_options(args)
    except ValueError as err:
        raise user_error(err) from None
    if args.log_to:  # a tracker that is not installed is refused before anything starts
        trackers.check_installed(args.log_to)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address:  # before Ray starts; a dry run only lists the jobs: it reads no data
        try:
            check_local_inputs(spec, data=args.data_check is None and not args.dry_run)
        except UserError as err:
            raise cluster.PreflightError(err.summary, err.problems) from None
    if not address and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    import ray  # here, not at the top: after the loopback setting, and only for `run`

    use_ray = bool(not args.dry_run or address or ray.is_initialized())
    try:
        # The sweep folder's lock is held from before the store is read until exit (harness.lock);
        # SIGTERM is Ctrl-C from ray.init on, which sets a handler of its own.
        with (
            contextlib.ExitStack() as stack,
            _early_lock(args, spec, options, lock.RunLock(stack)) as held,
            cluster.session(args.address) if use_ray else contextlib.nullcontext(),
            signals.sigterm_as_interrupt(),
        ):
            try:
                # The one discovery of the cluster and the one read of the store of this run (harness.plan).
                shape = cluster.discover() if use_ray else None
                plan = resolve_plan(spec, options, shape, None if args.dry_run else held)  # a damaged file is named here
            except ValueError as err:
                raise user_error(err) from None
            print_banner(console, plan, args)
            warn_caveats(errors, plan.configs)
            if args.dry_run:
                console.print(job_table(plan))
                return EXIT_OK
            return execute(args, plan, console, errors)
    except KeyboardInterrupt as err:
        errors.print("interrupted: finished jobs are saved; run the same command again to resume")
        return _interrupted_status(err)


@contextlib.contextmanager
def _early_lock(args: argparse.Namespace, spec: SweepSpec, options: RunOptions, held: lock.RunLock) -> Iterator[lock.RunLock]:
    """`held`, with the sweep folder's lock taken now when the flags name the sweep: before Ray
    starts, so a second run of a sweep being written is refused in a second (harness.plan.known_name)."""
    name = None if args.dry_run else known_name(spec, options)
    if name is not None:
        held.take(paths.sweep_dir(options.results, name))
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
            outcome = driver.run_sweep(plan, on_event=on_event, job_fn=args.job_fn or DEFAULT_JOB_FN)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the driver has killed the running actors; committed results stay
        print_interrupted(errors, args.results, plan.name, plan.configs, err, plan.options.accept_revisions)
        return _interrupted_status(err)
    print_outcome(console, args.results, plan, outcome, args.price_per_gpu_hour, args.log_to or "")
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _both(first: Callable[[Event], None], second: Callable[[Event], None]) -> Callable[[Event], None]:
    """One event handler that calls two, in order."""

    def both(event: Event) -> None:
        first(event)
        second(event)

    return both
