"""What `harness run` prints around the live view: the banner of what is about to run, the dry
run's job table, what an interrupted run leaves, and the end of a run: its tables, its counts and
where to look next (the HTML report, `harness compare`, the curves and the tracker it was sent to).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import paths, scheduler, signals, store
from harness.cli_results import print_summary
from harness.plan import Plan
from harness.progress import SweepOutcome
from harness.ray_quiet import local_cluster_note
from harness.sweep import describe_variant, variant_profile
from memseg.config import JobConfig
from memseg.precision import PRECISIONS, describe_recipe


def print_banner(console: Console, plan: Plan, args: argparse.Namespace) -> None:
    """What is about to run, on what data, on which cluster, with which resources."""
    console.print(f"[bold]sweep[/] {plan.name}: {len(plan.configs)} jobs -> {paths.sweep_dir(args.results, plan.name)}")
    console.print(f"[bold]profile[/] {plan.profile} ({plan.why})")
    stale = plan.to_run.describe_stale()
    console.print(
        f"[bold]revision[/] {plan.to_run.revision} (docs/results.md)" + (f"; {escape(stale)}" if stale else ""),
        highlight=False,
    )
    for job_id, why in plan.to_run.damaged:  # not done: run again, and say why
        console.print(f"[bold yellow]damaged[/] {escape(job_id)} runs again: {escape(why)}", highlight=False)
    for note in plan.to_run.strays:
        console.print(f"[bold yellow]not counted[/] {escape(note)}", highlight=False)
    if plan.spec.variants:
        shown = "; ".join(f"{name} ({describe_variant(plan.spec, name)})" for name in plan.spec.variants)
        console.print(f"[bold]variants[/] {escape(shown)}", highlight=False)
    precisions = sorted({c.precision for c in plan.configs}, key=PRECISIONS.index)
    console.print(f"[bold]precision[/] {escape('; '.join(describe_recipe(p) for p in precisions))}", highlight=False)
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
    under = scheduler.detect()
    if plan.cluster is None:
        if under is not None:
            console.print(f"[bold]scheduler[/] {escape(under.describe())}", highlight=False)
        console.print(f"[bold]cluster[/] not started (dry run); this machine has {plan.gpus:g} GPU(s)")
        if plan.spec.jobs_per_gpu is not None:
            console.print(f"[bold]sharing[/] --jobs-per-gpu {plan.spec.jobs_per_gpu} (sized and checked when the cluster starts)")
        return
    head = args.address or os.environ.get("RAY_ADDRESS") or "local"
    if under is not None:  # per node, as the scheduler gave them; Ray's count where it says nothing
        gpus = max((n.gpus for n in plan.cluster.nodes), default=0.0)
        console.print(f"[bold]scheduler[/] {escape(under.describe(len(plan.cluster.nodes), gpus))}", highlight=False)
    console.print(f"[bold]cluster[/] {head}: {plan.cluster.describe()}")
    if head == "local":
        console.print(f"[bold]ray[/] {local_cluster_note()}", highlight=False)
    if plan.request is not None:
        console.print(f"[bold]resources[/] {plan.request.describe()}")
    if plan.packing is not None:
        console.print(f"[bold]sharing[/] {escape(plan.packing.describe())}", highlight=False)
    if plan.estimate is not None:
        console.print(f"[bold]estimate[/] {escape(plan.estimate.describe())}", highlight=False)


def print_outcome(
    console: Console, results: Path, plan: Plan, outcome: SweepOutcome, price: float | None = None, log_to: str = ""
) -> None:
    """The end of a run: its tables (never averaged across revisions: kept results of an accepted
    revision get tables of their own), what it did, and where to look next."""
    print_summary(console, store.load_results(results, plan.name), plan.name, markdown=False, price=price, by_revision=True)
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
    print_next_steps(console, results, plan, log_to)


def print_next_steps(console: Console, results: Path, plan: Plan, log_to: str = "") -> None:
    """The last lines of a run: the commands that show its results in more depth."""
    sweep, where = plan.name, f" --results {results}" if str(results) != "results" else ""
    console.print(f"[bold]next[/] the HTML report: python -m harness report --name {sweep}{where} --html", highlight=False)
    console.print(f"[bold]next[/] training curves: python -m harness report --name {sweep}{where} --curves", highlight=False)
    ablations = sorted({c.ablation for c in plan.configs})
    if len(ablations) > 1:
        console.print(
            f"[bold]next[/] is each ablation's difference real? python -m harness compare --name {sweep}{where} "
            f"--ablations {','.join(ablations)}",
            highlight=False,
        )
    if len(plan.spec.variants) > 1:
        console.print(
            f"[bold]next[/] is each recipe variant's difference real? python -m harness compare --name {sweep}{where} "
            f"--variants {','.join(plan.spec.variants)}",
            highlight=False,
        )
    if log_to:
        console.print(f"[bold]next[/] the runs sent with --log-to {log_to}: docs/watching.md says how to open them")


def warn_if_data_moved(errors: Console, results: Path, plan: Plan) -> None:
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


def print_interrupted(
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


def job_table(plan: Plan) -> Table:
    """The jobs of a dry run; a variant column (and each variant's own profile) when the sweep has variants."""
    variants = bool(plan.spec.variants)
    table = Table(title="jobs (dry run)")
    for name in ("job id", "category", "seed", "ablation", *(("variant",) if variants else ()), "profile", "done?"):
        table.add_column(name)
    runs = plan.to_run
    marks = dict.fromkeys(runs.done, "yes") | dict.fromkeys(runs.failed, "failed")
    marks |= {j: f"revision {r}: re-run" for j, r in runs.stale}
    marks |= {j: "damaged: re-run" for j, _ in runs.damaged}
    for c in plan.configs:
        which = (c.variant,) if variants else ()
        prof = variant_profile(plan.spec, c.variant)
        table.add_row(c.job_id, c.category, str(c.seed), c.ablation, *which, prof, marks.get(c.job_id, "no"))
    return table
