"""The `run`, `status` and `report` sub-commands: build the sweep from flags and YAML, run it on
Ray with a live view, and render the result tables. `status` and `report` read Parquet alone and
never import Ray.

Exit status: 0 every job ok, 1 some job failed, 2 bad input, a failed preflight or a sweep folder
another run is writing (see harness.lock), 130 Ctrl-C, 143 SIGTERM (handled like Ctrl-C; see
harness.signals).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from harness import checkpoints, lock, report, signals, store
from harness.progress import (
    CheckpointSaved,
    Event,
    JobFinished,
    JobResumed,
    JobRetrying,
    LiveState,
    Note,
    SweepStarted,
)
from harness.sweep import (
    SweepSpec,
    dump_sweep,
    expand,
    load_sweep,
    parse_ablations,
    parse_categories,
    parse_seeds,
    spec_from_dict,
    sweep_name,
)
from memseg.config import DATASET_KINDS, PROFILES, profile

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
DATA_SEED = 0  # the generated data set is the same for every job seed

# Ray's local node binds its ports to the machine's address unless told it is a one-machine
# cluster; this variable (read when ray is imported) keeps a local run on 127.0.0.1.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a sweep of MemSeg jobs on Ray (resumes: finished jobs are skipped)",
        description="Expand categories x seeds x ablations into jobs, run each in its own Ray actor, "
        "write one Parquet row per job under RESULTS/<sweep>/ and print the tables.",
    )
    what = run.add_argument_group("what to run (flags override the --sweep file)")
    which = what.add_mutually_exclusive_group()
    which.add_argument("--all-categories", action="store_true", help="every MVTec AD category")
    which.add_argument("--categories", help="comma-separated categories, or 'all'")
    what.add_argument("--seeds", help="comma-separated seeds (default 0)")
    what.add_argument("--ablations", help="comma-separated ablations or 'all' (default full)")
    what.add_argument("--sweep", type=Path, help="a sweep file, e.g. jobs/paper.yaml")
    what.add_argument("--name", help="sweep name = results folder (default: from the file, or <profile>-<dataset>)")
    what.add_argument("--profile", choices=sorted(PROFILES), help="default: paper when the cluster has GPUs, else smoke")
    what.add_argument("--steps", type=int, help="training steps (overrides the profile)")
    what.add_argument("--image-size", type=int, help="image size in pixels, a multiple of 32")
    what.add_argument("--backbone-weights", help="imagenet | none | path to a ResNet18 state dict")
    what.add_argument("--texture-dir", help="DTD-style folder of anomaly-source textures (default: procedural)")
    what.add_argument("--compile", action="store_true", default=None,
                      help="torch.compile each job's model (pays off over thousands of GPU steps)")
    data = run.add_argument_group("data")
    data.add_argument("--data-root", help="data set root, seen at this path on every node (default: generated data)")
    data.add_argument("--dataset", choices=DATASET_KINDS, help="default: mvtec with --data-root, else synthetic")
    where = run.add_argument_group("where and how")
    where.add_argument("--results", type=Path, default=Path("results"), help="results root (default ./results)")
    where.add_argument("--address", help="Ray cluster to use: auto, HOST:PORT or ray://HOST:10001 (default: start one here)")
    where.add_argument("--gpus-per-job", type=float, help="GPUs per job (default 1 if the cluster has GPUs, else 0)")
    where.add_argument("--cpus-per-job", type=float, help="CPUs per job (default: the job's share of a GPU node, or 1)")
    where.add_argument("--max-retries", type=int, help="new actors for a job whose worker died (default 2)")
    where.add_argument("--checkpoint-every", type=int, metavar="N",
                       help="keep each job's training state every N steps under RESULTS/<sweep>/checkpoints/; a retried "
                       "or resumed job starts there (default: a tenth of the steps for the paper profile, 0 = off otherwise)")
    where.add_argument("--artefacts-dir", help="where jobs save weights; must be shared with this machine (default: not saved)")
    where.add_argument("--force", action="store_true", help="re-run jobs that are already done")
    where.add_argument("--retry-failed", action="store_true", help="re-run jobs that failed before")
    where.add_argument("--dry-run", action="store_true", help="print the jobs and exit without running them")
    where.add_argument("--job-fn", default="memseg.job.run", help=argparse.SUPPRESS)  # tests: module:function
    where.add_argument("--data-check", default="memseg.data.loading:check", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    status = subparsers.add_parser("status", help="done / failed / pending jobs per sweep (no Ray)")
    status.add_argument("--results", type=Path, default=Path("results"))
    status.add_argument("--sweep", help="only this sweep")
    status.set_defaults(func=cmd_status)

    rep = subparsers.add_parser("report", help="print the result tables from the Parquet files (no Ray)")
    rep.add_argument("--results", type=Path, default=Path("results"))
    rep.add_argument("--sweep", help="only this sweep")
    rep.add_argument("--markdown", action="store_true", help="Markdown instead of terminal tables")
    rep.add_argument("--html", nargs="?", const="", metavar="PATH",
                     help="also write a self-contained HTML report (default RESULTS/<sweep>/report.html)")
    rep.set_defaults(func=cmd_report)


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
    }
    return {k: v for k, v in pairs.items() if v is not None}


def build_spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep from the --sweep file (if any) with the flags on top. The profile may stay None
    (chosen from the cluster later)."""
    spec = load_sweep(args.sweep) if args.sweep else SweepSpec()
    changes: dict[str, Any] = {}
    if args.all_categories:
        changes["categories"] = parse_categories("all")
    elif args.categories:
        changes["categories"] = parse_categories(args.categories)
    if args.seeds:
        changes["seeds"] = parse_seeds(args.seeds)
    if args.ablations:
        changes["ablations"] = parse_ablations(args.ablations)
    for key in ("name", "profile", "gpus_per_job", "cpus_per_job", "max_retries"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
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
    if not spec.categories:
        raise ValueError("say which categories to run: --all-categories, --categories a,b or --sweep FILE")
    if spec.dataset != "synthetic" and spec.data_root is None:
        raise ValueError(
            f"{spec.dataset} data needs --data-root (a folder every node sees at that path); "
            "get MVTec AD with `python -m harness data download mvtec --out DIR`, or use generated data with --dataset synthetic"
        )
    expand(spec.replace(profile=spec.profile or "paper"))  # bad overrides fail here, before Ray starts
    return spec


def _local_gpus() -> int:
    """GPUs on this machine, without starting Ray (for --dry-run)."""
    import torch

    return torch.cuda.device_count()


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


def cmd_run(args: argparse.Namespace) -> int:
    console, errors = _consoles()
    try:
        spec = build_spec(args)
    except ValueError as err:
        errors.print(f"[red]error:[/] {err}", markup=True, highlight=False)
        return EXIT_BAD_INPUT
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    import ray

    from harness import driver

    use_ray = bool(not args.dry_run or address or ray.is_initialized())
    started_ray = False
    try:
        started_ray = driver.connect(args.address) if use_ray else False
        with signals.sigterm_as_interrupt():  # after ray.init, which installs its own handler
            return _run(args, spec, console, errors, use_ray)
    except driver.PreflightError as err:
        errors.print(f"[red]preflight failed, no job started:[/] {err}", markup=True, highlight=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as err:
        errors.print("interrupted: finished jobs are saved; run the same command again to resume")
        return _interrupted_status(err)
    finally:
        if started_ray:
            ray.shutdown()


def _interrupted_status(err: KeyboardInterrupt) -> int:
    return signals.EXIT_TERMINATED if signals.was_terminated(err) else EXIT_INTERRUPTED


def _run(args: argparse.Namespace, spec: SweepSpec, console: Console, errors: Console, use_ray: bool) -> int:
    from harness import driver

    nodes = driver.cluster_nodes() if use_ray else []
    node_types = driver.autoscaler_node_types() if use_ray else []
    gpus = sum(n.gpus for n in nodes) + sum(t.gpus * t.max_workers for t in node_types) if use_ray else _local_gpus()
    profile_name, why = choose_profile(spec, gpus)
    spec = spec.replace(profile=profile_name)
    try:
        image_size = int({**profile(profile_name), **spec.overrides}.get("image_size", 256))
        synthetic = None
        if spec.dataset == "synthetic":
            root = spec.data_root or str((args.results / "_data" / f"synthetic-{image_size}").resolve())
            spec = spec.replace(data_root=root)
            synthetic = driver.SyntheticData(root, image_size, DATA_SEED)
        # Flags that change the experiment add a hash to a derived name: same flags, same folder.
        name = args.name or sweep_name(spec, cli_overrides(args))
        spec = spec.replace(name=name)
        configs = expand(spec)
    except ValueError as err:
        errors.print(f"[red]error:[/] {err}", markup=True, highlight=False)
        return EXIT_BAD_INPUT
    if args.artefacts_dir:
        configs = [c.replace(out_dir=str(Path(args.artefacts_dir).resolve())) for c in configs]
    every = _checkpoint_every(args, profile_name, configs)
    if every < 0:
        errors.print(f"[red]error:[/] --checkpoint-every must be >= 0 (0 = off), got {every}", markup=True, highlight=False)
        return EXIT_BAD_INPUT

    console.print(f"[bold]sweep[/] {name}: {len(configs)} jobs -> {args.results / name}")
    console.print(f"[bold]profile[/] {profile_name} ({why})")
    console.print("[bold]checkpoints[/] " + (f"every {every} steps, kept under {args.results / name / 'checkpoints'}" if every
                                            else "off (--checkpoint-every N to keep a job's state every N steps)"))
    if synthetic is not None:
        console.print(f"[bold]data[/] generated MVTec-layout set at {spec.data_root} (made once, then reused; --data-root for real data)")
    else:
        console.print(f"[bold]data[/] {spec.dataset} at {spec.data_root}")
    if use_ray:
        cpus, head = sum(n.cpus for n in nodes), (args.address or os.environ.get("RAY_ADDRESS") or "local")
        console.print(f"[bold]cluster[/] {head}: {len(nodes)} node(s), {cpus:g} CPU, {sum(n.gpus for n in nodes):g} GPU"
                      + (f"; autoscaler may add {', '.join(f'{t.max_workers} x {t.name}' for t in node_types)}" if node_types else ""))
        try:
            request = driver.default_request(nodes, node_types, spec.gpus_per_job, spec.cpus_per_job)
        except driver.PreflightError:
            request = None
        if request is not None:
            console.print(f"[bold]resources[/] {request.describe()}")
    else:
        console.print(f"[bold]cluster[/] not started (dry run); this machine has {gpus} GPU(s)")

    try:
        statuses = store.job_statuses(args.results, name)
    except ValueError as err:  # a damaged result file: named, never taken for a result
        errors.print(f"[red]error:[/] {err}", markup=True, highlight=False)
        return EXIT_BAD_INPUT
    if args.dry_run:
        console.print(_job_table(configs, statuses, profile_name))
        return EXIT_OK

    try:
        # One run per sweep folder at a time; held until this process exits in any way.
        with lock.hold(store.sweep_dir(args.results, name)) as held:
            if held.warning:
                errors.print(f"[yellow]warning:[/] {held.warning}", markup=True, highlight=False)
            _warn_if_data_moved(errors, args.results, name, spec)
            store.save_spec(args.results, name, dump_sweep(spec))
            view = _LiveView(console)
            with view.live():
                outcome = driver.run_sweep(
                    configs,
                    name,
                    args.results,
                    job_fn=args.job_fn,
                    gpus_per_job=spec.gpus_per_job,
                    cpus_per_job=spec.cpus_per_job,
                    max_retries=spec.max_retries,
                    on_event=view.on_event,
                    profile=profile_name,
                    force=args.force,
                    retry_failed=args.retry_failed,
                    data_check=args.data_check or None,
                    synthetic=synthetic,
                    checkpoint_every=every,
                )
    except lock.LockHeld as err:
        errors.print(f"[red]error:[/] {err}", markup=True, highlight=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the driver has killed the running actors; committed results stay
        _print_interrupted(errors, args.results, name, configs, err)
        return _interrupted_status(err)
    _print_summary(console, args.results, name, markdown=False)
    console.print(
        f"ran {len(outcome.ran)} job(s) in {outcome.wall_s:.1f} s: {len(outcome.succeeded)} ok, {len(outcome.failed)} failed, "
        f"{outcome.retries} retried; {len(outcome.done_before)} were done before"
    )
    if outcome.resumed:
        console.print(f"{len(outcome.resumed)} launch(es) started from a checkpoint, skipping "
                      f"{sum(step for _, step in outcome.resumed)} step(s): " + ", ".join(f"{j} at step {s}" for j, s in outcome.resumed))
    if outcome.failed_before:
        console.print(f"[yellow]{len(outcome.failed_before)} job(s) failed in an earlier run and were not re-run; --retry-failed to re-run them[/]")
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _checkpoint_every(args: argparse.Namespace, profile_name: str, configs: list) -> int:
    """--checkpoint-every, or the profile's default for the sweep's step count."""
    if args.checkpoint_every is not None:
        return int(args.checkpoint_every)
    return checkpoints.default_every(profile_name, max((c.steps for c in configs), default=0))


def _warn_if_data_moved(errors: Console, results: Path, name: str, spec: SweepSpec) -> None:
    """Job ids leave paths out (the same data resumes on any mount point), so results made from
    data at another path count as done: say so, in case it is other data."""
    import yaml

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
        )


def _print_interrupted(errors: Console, results: Path, name: str, configs: list, cause: BaseException | None = None) -> None:
    """What an interrupted run leaves: the jobs committed (kept), those that are not, and those
    that will resume from a checkpoint."""
    statuses = store.job_statuses(results, name)
    done = [c.job_id for c in configs if statuses.get(c.job_id) == store.STATUS_OK]
    failed = [c.job_id for c in configs if statuses.get(c.job_id) == store.STATUS_FAILED]
    pending = [c.job_id for c in configs if c.job_id not in statuses]
    shown = ", ".join(pending[:10]) + (f" and {len(pending) - 10} more" if len(pending) > 10 else "")
    kept = [j for j in pending if checkpoints.checkpoint_path(results, name, j).exists()]
    what = "terminated (SIGTERM)" if signals.was_terminated(cause) else "interrupted"
    errors.print(
        f"{what}: {len(done)} of {len(configs)} job(s) done (kept in {store.sweep_dir(results, name)}), "
        f"{len(failed)} failed, {len(pending)} pending" + (f": {shown}" if pending else "") + ". "
        "Running jobs were cancelled; run the same command again to resume (done jobs are not re-run"
        + (f"; {len(kept)} pending job(s) resume from their checkpoint" if kept else "") + ").",
        highlight=False,
    )


def _job_table(configs: list, statuses: dict[str, str], profile_name: str) -> Table:
    table = Table(title="jobs (dry run)")
    for name in ("job id", "category", "seed", "ablation", "profile", "done?"):
        table.add_column(name)
    for c in configs:
        status = statuses.get(c.job_id)
        mark = "yes" if status == store.STATUS_OK else ("failed" if status == store.STATUS_FAILED else "no")
        table.add_row(c.job_id, c.category, str(c.seed), c.ablation, profile_name, mark)
    return table


class _LiveView:
    """The live display: an overall bar with ETA above one line per running job. Events arrive on
    the driver's thread; rich redraws on its own, so both sides take the lock."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.state = LiveState()
        self.lock = threading.Lock()
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.bar.add_task("jobs", total=None)

    def __rich__(self) -> Group:
        with self.lock:
            return Group(self.bar, report.running_view(self.state))

    def live(self):
        from rich.live import Live

        return Live(self, console=self.console, refresh_per_second=4, transient=True)

    def on_event(self, event: Event) -> None:
        with self.lock:
            self.state.apply(event)
        if isinstance(event, SweepStarted):
            self.bar.update(self.task, total=len(event.to_run))
            self.console.log(
                f"{len(event.to_run)} to run, {len(event.done_before)} done before"
                + (f", {len(event.failed_before)} failed before (not re-run; --retry-failed)" if event.failed_before else "")
                + (f"; at most {event.capacity} at once" if event.to_run else "")
            )
        elif isinstance(event, Note):
            self.console.log(event.message)
        elif isinstance(event, JobRetrying):
            self.console.log(f"[magenta]retry[/] {event.job_id} (attempt {event.next_attempt}): {event.reason}")
        elif isinstance(event, JobResumed):
            self.console.log(f"[magenta]resume[/] {event.job_id} (attempt {event.attempt}) from its checkpoint at step {event.step}")
        elif isinstance(event, CheckpointSaved):
            self.console.log(f"checkpoint {event.job_id} step {event.step} ({event.size / 2**20:.1f} MB, written in {event.write_s:.2f} s)")
        elif isinstance(event, JobFinished):
            self.bar.advance(self.task)
            if event.status == store.STATUS_OK:
                self.console.log(f"[green]ok[/] {event.job_id} ({event.wall_s:.1f} s)")
            else:
                self.console.log(f"[red]failed[/] {event.job_id}: {event.error}", highlight=False)


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
    for name in ("sweep", "profile", "dataset", "jobs", "done", "failed", "pending", "other results"):
        table.add_column(name, justify="left" if name in ("sweep", "profile", "dataset") else "right")
    failures: list[tuple[str, str, str]] = []
    for sweep in sweeps:
        statuses = store.job_statuses(args.results, sweep)
        text = store.read_spec(args.results, sweep)
        ids: list[str] = []
        prof = dataset = "?"
        if text is not None:
            import yaml

            try:
                spec = spec_from_dict(yaml.safe_load(text))
                ids = [c.job_id for c in expand(spec)]
                prof, dataset = spec.profile or "?", spec.dataset
            except (ValueError, yaml.YAMLError) as err:
                errors.print(f"{sweep}: cannot read its sweep.yaml ({err}); counting its results only", highlight=False)
        ids = ids or sorted(statuses)
        done = sum(statuses.get(i) == store.STATUS_OK for i in ids)
        failed = [i for i in ids if statuses.get(i) == store.STATUS_FAILED]
        other = len(set(statuses) - set(ids))
        table.add_row(sweep, prof, dataset, str(len(ids)), str(done), str(len(failed)), str(len(ids) - done - len(failed)), str(other))
        if failed:
            rows = store.load_results(args.results, sweep)
            for r in rows[rows["job_id"].isin(failed)].itertuples():
                failures.append((sweep, r.job_id, (r.error or "").splitlines()[0][:160] if r.error else ""))
    console.print(table)
    if failures:
        ftable = Table(title="failed jobs (--retry-failed re-runs them)")
        for name in ("sweep", "job", "error"):
            ftable.add_column(name)
        for row in failures:
            ftable.add_row(*row)
        console.print(ftable)
    return EXIT_OK


def _print_summary(console: Console, results: Path, sweep: str, markdown: bool) -> None:
    rows = store.load_results(results, sweep)
    tables = report.summary_tables(rows, sweep)
    for table in tables:
        if markdown:
            console.out(report.to_markdown(table))
        else:
            console.print(report.to_rich(table))


def cmd_report(args: argparse.Namespace) -> int:
    console, errors = _consoles()
    sweeps = _pick_sweeps(args.results, args.sweep, console, errors)
    if isinstance(sweeps, int):
        return sweeps
    if args.html and len(sweeps) > 1:
        errors.print(f"--html {args.html} names one file but there are {len(sweeps)} sweeps: add --sweep NAME, "
                     "or give --html alone for RESULTS/<sweep>/report.html each", highlight=False)
        return EXIT_BAD_INPUT
    for sweep in sweeps:
        _print_summary(console, args.results, sweep, args.markdown)
        if args.html is not None:
            from harness import report_html  # matplotlib only when asked for

            path = report_html.write_report(args.results, sweep, Path(args.html) if args.html else None)
            errors.print(f"HTML report of {sweep}: {path} ({path.stat().st_size / 1024:.0f} KB)", highlight=False)
    return EXIT_OK
