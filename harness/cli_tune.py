"""The `tune` sub-command: search a recipe on Ray Tune by the validation curve alone (harness.tune),
commit a row per trial, and write the final sweep file: the best recipe as variant `tuned` beside
`official` (the sweep's profile as is), with the `harness run` command that measures both on the
test set, every seed, once.

Exit status: 0 when the search ended with a finished trial, 1 when none finished, 2 bad input or a
failed preflight, 130 Ctrl-C, 143 SIGTERM (Tune's state is kept: the same command resumes).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from harness import cluster, lock, paths, search_view, signals, trials_store
from harness.cli_checks import check_local_inputs
from harness.cli_common import add_results_flag, consoles
from harness.options import DEFAULT_DATA_CHECK, RunOptions
from harness.plan import resolve_plan
from harness.run_flags import flag_changes
from harness.search import OFFICIAL, TUNED, SearchSpec, dump_tuned, load_search, search_sweep, tuned_sweep
from harness.sweep import SweepSpec, check_recipes, flags_digest, parse_jobs_per_gpu
from memseg.atomic import write_text_atomic
from memseg.cli_errors import UserError, non_negative_float, positive_int, user_error
from memseg.cli_recipe import add_recipe_flags, recipe_overrides
from memseg.data.registry import DATASET_KINDS
from memseg.profiles import PROFILES

EXIT_OK, EXIT_NONE_FINISHED, EXIT_INTERRUPTED = 0, 1, 130
FINAL_SUFFIX = "-final"  # the final sweep's name: the search's, with this after it
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # as `run`: a local Ray on 127.0.0.1 (harness.cli_run)


def register(subparsers: argparse._SubParsersAction) -> None:
    tune = subparsers.add_parser(
        "tune",
        help="search a recipe on Ray Tune by the validation curve (never the test set); write the final sweep file",
        description="Run the trials of the --sweep file's `search:` section on Ray Tune (ASHA stops trailing trials), "
        "judged by the validation curve on held-out training images only. Write one row per trial under "
        "RESULTS/<search>/trials/ and a sweep file with variants official and tuned, and print the `harness run` "
        "command that measures both on the test set.",
    )
    tune.add_argument("--sweep", type=Path, required=True, help="a sweep file with a `search:` section (docs/tuning.md)")
    tune.add_argument("--trials", type=positive_int, help="trials to run (Tune's num_samples; default: the file's)")
    tune.add_argument("--out", type=Path, help="the final sweep file to write (default RESULTS/<search>/tuned.yaml)")
    tune.add_argument("--name", help="the search's results folder (default: from the file)")
    tune.add_argument("--profile", choices=sorted(PROFILES), help="default: the file's, else paper with GPUs, smoke without")
    recipe = tune.add_argument_group("recipe (on top of the file's overrides, for the search and the final sweep)")
    add_recipe_flags(recipe)
    data = tune.add_argument_group("data")
    data.add_argument("--data-root", help="data set root, seen at this path on every node (default: generated data)")
    data.add_argument("--dataset", choices=DATASET_KINDS, help="default: the file's")
    where = tune.add_argument_group("where")
    add_results_flag(where)
    where.add_argument("--address", help="Ray cluster to use: auto, HOST:PORT or ray://HOST:10001 (default: start one here)")
    where.add_argument("--gpus-per-job", type=non_negative_float, help="GPUs per trial (default 1 if the cluster has GPUs)")
    where.add_argument("--jobs-per-gpu", type=parse_jobs_per_gpu, metavar="K|auto", help="share each GPU between K trials")
    where.add_argument("--cpus-per-job", type=non_negative_float, help="CPUs per trial (default: as `harness run`)")
    where.add_argument("--job-fn", help=argparse.SUPPRESS)  # tests: module:function (default memseg.job.validate)
    where.add_argument("--data-check", help=argparse.SUPPRESS)  # tests: module:function; "" = none
    tune.set_defaults(func=cmd_tune)


def spec_and_search(args: argparse.Namespace) -> tuple[SweepSpec, SearchSpec, RunOptions]:
    """The sweep (the file with the flags on top), its search and the run options; ValueError on bad input."""
    paths.check_results_root(args.results)
    spec, search = load_search(args.sweep)
    overrides = recipe_overrides(args)
    spec = spec.replace(**flag_changes(args, spec, overrides))  # the flags mean what they mean to `run`
    if args.trials is not None:
        search = dataclasses.replace(search, trials=args.trials)
    if not spec.categories:
        raise ValueError(f"{args.sweep}: the sweep names no categories")
    check_recipes(spec)
    data_check = DEFAULT_DATA_CHECK if args.data_check is None else (args.data_check or None)
    options = RunOptions(results=args.results, data_check=data_check, name_digest=flags_digest(overrides), name=args.name)
    return spec, search, options


def cmd_tune(args: argparse.Namespace) -> int:
    console, errors = consoles()
    try:
        spec, search, options = spec_and_search(args)
    except ValueError as err:
        raise user_error(err) from None
    address = args.address or os.environ.get("RAY_ADDRESS")
    searched = search_sweep(spec, search)
    if not address:  # before Ray starts, as `run` does
        try:
            check_local_inputs(searched, data=args.data_check is None)
        except UserError as err:
            raise cluster.PreflightError(err.summary, err.problems) from None
    if not address and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    # Tune's own progress output: the legacy reporter, which is silent at verbose 0 (this command prints its tables).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from harness import tune  # imports Ray: after the loopback setting, and only for `tune`

    try:
        with contextlib.ExitStack() as stack, cluster.session(args.address), signals.sigterm_as_interrupt():
            held = lock.RunLock(stack)
            try:
                plan = resolve_plan(searched, options, cluster.discover(), held)
                spec = spec.replace(profile=plan.profile)
                console.print(
                    f"search [bold]{plan.name}[/]: {search.trial_count()} trial(s) of "
                    f"{', '.join(d.describe() for d in search.space)}; {len(plan.configs)} job(s) each "
                    f"({', '.join(sorted({c.category for c in plan.configs}))}, seed(s) "
                    f"{', '.join(str(s) for s in sorted({c.seed for c in plan.configs}))}), profile {plan.profile}; "
                    f"judged by validation {search.metric} ({search.mode}) on simulated anomalies, never the test set; "
                    f"scheduler {search.scheduler}",
                    highlight=False,
                )
                outcome = tune.run_search(plan, search, job_fn=args.job_fn or tune.DEFAULT_TRIAL_FN)
            except ValueError as err:
                raise user_error(err) from None
    except KeyboardInterrupt as err:
        errors.print("interrupted: Tune's state is kept under the search folder; run the same command again to resume")
        return signals.EXIT_TERMINATED if signals.was_terminated(err) else EXIT_INTERRUPTED
    if outcome.restored:
        console.print("restored Tune's state: finished trials were kept, unfinished ones ran again from their first step")
    for part in search_view.renderables(trials_store.load_trials(args.results, plan.name), plan.name):
        console.print(part, highlight=False)
    console.print(f"{len(outcome.rows)} trial(s) in {outcome.wall_s:.0f} s", highlight=False)
    if outcome.best is None:
        errors.print("no trial finished with a finite validation metric: no tuned recipe to write")
        return EXIT_NONE_FINISHED
    final = tuned_sweep(spec, outcome.best.recipe, plan.name + FINAL_SUFFIX)
    out = args.out or paths.sweep_dir(args.results, plan.name) / "tuned.yaml"
    write_text_atomic(out, dump_tuned(final, search, outcome.best.recipe, outcome.best.value))
    console.print(
        f"chosen recipe ({search.metric} {outcome.best.value:.4f}): {_recipe_text(outcome.best.recipe)}", highlight=False
    )
    console.print(
        f"wrote {out}: variants {OFFICIAL} (the profile as is) and {TUNED}. The test set is read only by:", highlight=False
    )
    console.print(f"  {final_command(out, args)}", highlight=False, markup=False)
    console.print(
        f"  python -m harness compare --results {shlex.quote(str(args.results))} --name {final.name} "
        f"--variants {OFFICIAL},{TUNED}",
        highlight=False,
        markup=False,
    )
    return EXIT_OK


def final_command(out: Path, args: argparse.Namespace) -> str:
    """The `harness run` command of the final sweep file (its seeds and categories are in the file)."""
    parts = ["python -m harness run --sweep", shlex.quote(str(out)), "--results", shlex.quote(str(args.results))]
    for flag in ("data_root", "address"):
        if getattr(args, flag):
            parts += [f"--{flag.replace('_', '-')}", shlex.quote(str(getattr(args, flag)))]
    return " ".join(parts)


def _recipe_text(recipe: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in recipe.items())
