"""`harness run`'s flags, and what they mean as plain values: the sweep (a SweepSpec, from the
--sweep file with the flags on top) and the run options (harness.options.RunOptions). The only
place that reads the run's argparse Namespace (`tune` shares its flag-to-sweep rule, `flag_changes`);
everything below takes the two values.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import packing, paths
from harness.cli_common import add_results_flag
from harness.options import DEFAULT_DATA_CHECK, RunOptions
from harness.sweep import (
    SweepSpec,
    check_recipes,
    flags_digest,
    load_sweep,
    parse_ablations,
    parse_categories,
    parse_jobs_per_gpu,
    parse_seeds,
    parse_variants,
    select_variants,
)
from harness.trackers import TRACKERS
from memseg.cli_errors import non_negative_float, non_negative_int, positive_float
from memseg.cli_recipe import add_recipe_flags, recipe_overrides
from memseg.config import STEP_MODES
from memseg.data.registry import DATASET_KINDS, get_dataset
from memseg.profiles import PROFILES


def add_run_flags(run: argparse.ArgumentParser) -> None:
    """Every flag of `harness run`."""
    _add_what_arguments(run)
    _add_where_flags(run)
    _add_watch_flags(run)


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
    add_results_flag(where)
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


def spec_and_options(args: argparse.Namespace) -> tuple[SweepSpec, RunOptions]:
    """The sweep and the run options the flags give; the recipe flags are read once, here. Raises
    ValueError on bad input, before anything starts."""
    if args.log_dest and not args.log_to:
        raise ValueError(
            f"--log-dest {args.log_dest} says where --log-to writes: give --log-to {'|'.join(TRACKERS)} with it, or drop it"
        )
    paths.check_results_root(args.results)
    flag_overrides = recipe_overrides(args)
    spec = build_spec(args, flag_overrides)
    if args.gpu_memory_gb is not None and spec.jobs_per_gpu is None:
        raise ValueError("--gpu-memory-gb sizes --jobs-per-gpu: give --jobs-per-gpu K|auto with it, or drop it")
    options = RunOptions(
        results=args.results,
        force=args.force,
        retry_failed=args.retry_failed,
        accept_revisions=tuple(r for group in args.accept_revision or () for r in group),
        checkpoint_every=args.checkpoint_every,
        artefacts_dir=str(Path(args.artefacts_dir).resolve()) if args.artefacts_dir else None,
        step_mode=args.step_mode,
        gpu_memory_gb=args.gpu_memory_gb,
        data_check=DEFAULT_DATA_CHECK if args.data_check is None else (args.data_check or None),
        name_digest=flags_digest(flag_overrides),
        name=args.name,
    )
    return spec, options


def build_spec(args: argparse.Namespace, flag_overrides: dict[str, Any]) -> SweepSpec:
    """The sweep from the --sweep file (if any) with the flags on top (`flag_overrides`: the recipe
    flags, read once by the caller). The profile may stay None (chosen from the cluster later)."""
    spec = load_sweep(args.sweep) if args.sweep else SweepSpec()
    spec = spec.replace(**flag_changes(args, spec, flag_overrides))
    if args.variants:
        spec = select_variants(spec, parse_variants(args.variants))
    if not spec.categories:
        raise ValueError("say which categories to run: --all-categories, --categories a,b or --sweep FILE")
    if spec.dataset != "synthetic" and spec.data_root is None and not args.dry_run:  # a dry run reads no data
        source = get_dataset(spec.dataset).download
        how = f"get it with `python -m harness data download {source} --out DIR`, " if source else ""
        raise ValueError(
            f"{spec.dataset} data needs --data-root (a folder every node sees at that path); "
            f"{how}or use generated data with --dataset synthetic"
        )
    check_recipes(spec)  # bad overrides fail here, before Ray starts (the sweep is expanded once, by the plan)
    return spec


def flag_changes(args: argparse.Namespace, spec: SweepSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The fields of the sweep that the flags replace: `run`'s and `tune`'s (harness.cli_tune), one
    rule for both. A flag the command does not declare (`tune` has no --seeds) counts as not given."""
    flags: dict[str, Any] = vars(args)
    data_root, asked_dataset = flags.get("data_root"), flags.get("dataset")
    dataset = asked_dataset or ("mvtec" if data_root and not flags.get("sweep") else spec.dataset)
    changes = {key: flags[key] for key in _SPEC_FLAGS if flags.get(key) is not None}
    if flags.get("all_categories"):
        changes["categories"] = parse_categories("all", dataset)
    elif categories := flags.get("categories"):
        changes["categories"] = parse_categories(categories, dataset)
    if seeds := flags.get("seeds"):
        changes["seeds"] = parse_seeds(seeds)
    if ablations := flags.get("ablations"):
        changes["ablations"] = parse_ablations(ablations)
    # A flag replaces the sweep file's way of sharing GPUs; giving both flags is a contradiction.
    if "jobs_per_gpu" in changes and "gpus_per_job" in changes:
        raise ValueError("give --jobs-per-gpu or --gpus-per-job, not both: K jobs per GPU is 1/K GPU per job")
    if "jobs_per_gpu" in changes:
        changes["gpus_per_job"] = None
    elif "gpus_per_job" in changes:
        changes["jobs_per_gpu"] = None
    if data_root:
        changes["data_root"] = str(Path(data_root).resolve())
    if asked_dataset or (data_root and not flags.get("sweep")):
        changes["dataset"] = dataset
    if overrides:
        changes["overrides"] = {**spec.overrides, **overrides}
    return changes


# The flags whose value is the sweep field of the same name, as given.
_SPEC_FLAGS = ("name", "profile", "gpus_per_job", "cpus_per_job", "max_retries", "jobs_per_gpu")
