"""`python -m harness data synth|check|download`: make, inspect and fetch data sets.

The work is done by memseg.data; this module parses arguments and renders with rich (tables,
progress bars, problems in red, ignored files in yellow). Handlers return the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.prompt import Confirm
from rich.table import Table
from rich.text import Text

from memseg.cli_errors import UserError, non_negative_int, positive_int, user_error
from memseg.data.registry import DATASET_KINDS, DOWNLOADABLE, check_categories, get_dataset
from memseg.data.types import DataError
from memseg.names import CATEGORIES, UnknownNameError


def parse_categories(text: str) -> tuple[str, ...] | None:
    """'a,b' -> ('a', 'b'); 'all' or '' -> None (every category)."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    return None if not names or names == ("all",) else names


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="generate, check or download data sets")
    commands = data.add_subparsers(dest="data_command", required=True)

    synth = commands.add_parser("synth", help="generate the synthetic MVTec-layout data set")
    synth.add_argument("--out", type=Path, required=True, help="folder to write (new, empty, or a generated set)")
    synth.add_argument("--categories", type=parse_categories, default=None, help="comma-separated (default: all 15)")
    synth.add_argument("--image-size", type=positive_int, default=128)
    synth.add_argument("--seed", type=non_negative_int, default=0)
    synth.add_argument("--n-train", type=positive_int, default=60, help="normal training images per category")
    synth.add_argument("--n-test-good", type=positive_int, default=10, help="normal test images per category")
    synth.add_argument("--n-defect", type=positive_int, default=7, help="test images per defect type")
    synth.add_argument(
        "--like",
        choices=("visa", "mvtec_ad2", "mpdd", "btad"),
        help="write a look-alike in that data set's layout (categories: its own)",
    )
    synth.set_defaults(func=run_synth)

    check = commands.add_parser("check", help="validate a data root: counts, missing masks, unreadable files")
    check.add_argument("--data-root", type=Path, required=True)
    check.add_argument("--dataset", choices=DATASET_KINDS, default="mvtec")
    check.add_argument("--categories", type=parse_categories, default=None, help="comma-separated (default: those present)")
    check.add_argument("--test-set", help="mvtec_ad2 only: the test set to evaluate (test_public; the private ones are refused)")
    check.set_defaults(func=run_check)

    download = commands.add_parser("download", help="download, verify and unpack a benchmark data set or DTD")
    download.add_argument("what", choices=(*DOWNLOADABLE, "dtd"))
    download.add_argument("--out", type=Path, required=True, help="folder to download and unpack into")
    download.add_argument("--url", default=None, help="a mirror (default: the pinned URL or MEMSEG_<NAME>_URL)")
    download.add_argument("--sha256", default=None, help="expected SHA-256 of the archive (default: the pinned one)")
    download.add_argument("--yes", action="store_true", help="accept the data set's licence without asking")
    download.set_defaults(func=run_download)


def run_synth(args: argparse.Namespace) -> int:
    from memseg.data.synthetic import defect_types, generate  # start-up time: only this command loads it

    console = Console(highlight=False)
    if args.like:
        return _run_synth_like(args, console)
    categories = args.categories or CATEGORIES
    try:
        out = _generating(
            console,
            "generating",
            lambda on_progress: generate(
                args.out,
                categories,
                *_counts(args),
                on_progress=on_progress,
            ),
        )
    except ValueError as err:  # DataError (a UserError) included: one message, exit 2
        raise user_error(err) from None
    table = Table(
        title=f"synthetic data set ({args.image_size} px, seed {args.seed})",
        caption="every defective test image has its mask in ground_truth/",
    )
    for column in ("category", "train good", "test good", "defect types", "test defective"):
        table.add_column(column, justify="left" if column in ("category", "defect types") else "right")
    total = 0
    for category in categories:
        types = defect_types(category)
        n_defect = args.n_defect * len(types)
        total += args.n_train + args.n_test_good + n_defect
        table.add_row(category, str(args.n_train), str(args.n_test_good), ", ".join(types), str(n_defect))
    console.print(table)
    console.print(Text(f"wrote {total} images in {len(categories)} categories to {out}", style="green"), soft_wrap=True)
    return 0


def _run_synth_like(args: argparse.Namespace, console: Console) -> int:
    from memseg.data.loading import validate  # start-up time: only this command loads it
    from memseg.data.lookalike import generate_like  # start-up time: only this command loads it

    try:
        out = _generating(
            console,
            f"generating a {args.like} look-alike",
            lambda on_progress: generate_like(
                args.like,
                args.out,
                args.categories,
                *_counts(args),
                on_progress=on_progress,
            ),
        )
        report = validate(args.like, out, args.categories)
    except ValueError as err:  # bad look-alike arguments are the user's
        raise user_error(err) from err
    _print_counts(console, report, f"{args.like} look-alike ({args.image_size} px, seed {args.seed}) at {out}")
    console.print(
        Text(
            f"wrote {len(report.categories)} categories in {args.like}'s layout to {out}; "
            f"use it with --dataset {args.like} --data-root {out}",
            style="green",
        ),
        soft_wrap=True,
    )
    return 0


def run_check(args: argparse.Namespace) -> int:
    from memseg.data.files import check_root  # start-up time: only this command loads it
    from memseg.data.loading import layout, validate  # start-up time: only this command loads it

    # Nothing to check (a missing root, an unknown category) is a user error: one message, exit 2.
    # Problems found in the data are the check's answer: exit 1.
    check_root(args.data_root, layout(args.dataset))
    if args.categories and args.dataset != "folder":
        try:
            check_categories(args.categories)
        except UnknownNameError as err:
            raise DataError.unknown(err) from None
    console = Console(highlight=False)
    if args.test_set is not None:
        if args.dataset != "mvtec_ad2":
            raise DataError(f"--test-set applies to --dataset mvtec_ad2 only, not {args.dataset}")
        from memseg.data.mvtec_ad2 import check_test_set  # start-up time: only this command loads it

        check_test_set(args.test_set)
    with console.status(f"checking {args.data_root} (every image is decoded)"):
        report = validate(args.dataset, args.data_root, args.categories)

    _print_counts(console, report, f"{args.dataset} data at {report.root}")
    if report.warnings:
        console.print(Text(f"{len(report.warnings)} file(s) ignored:", style="yellow"))
        for line in report.warnings:
            console.print(Text(f"  - {line}", style="yellow"), soft_wrap=True)
    if report.problems:
        console.print(Text(f"{len(report.problems)} problem(s):", style="bold red"))
        for line in report.problems:
            console.print(Text(f"  - {line}", style="red"), soft_wrap=True)
        return 1
    console.print(Text(f"OK: {len(report.categories)} categories, no problems", style="green"))
    return 0


def _print_counts(console: Console, report, title: str) -> None:
    """The table of images per category, split and defect type."""
    table = Table(title=title)
    for column in ("category", "train good", "test good", "defect type", "test images", "masks"):
        table.add_column(column, justify="left" if column in ("category", "defect type") else "right")
    for category in report.categories:
        counts = report.counts.get(category, {})
        test = counts.get("test", {})
        masks = counts.get("masks", {})
        defects = sorted(t for t in test if t != "good") or ["-"]
        for i, defect in enumerate(defects):
            first = i == 0
            mask_cell = str(masks.get(defect, 0)) if report.has_masks.get(category, True) else "no masks"
            table.add_row(
                category if first else "",
                str(counts.get("train", {}).get("good", 0)) if first else "",
                str(test.get("good", 0)) if first else "",
                defect,
                str(test.get(defect, 0)) if defect != "-" else "0",
                mask_cell if defect != "-" else "-",
            )
    if report.categories:
        console.print(table)


def run_download(args: argparse.Namespace) -> int:
    from memseg.data.download import download, get_source, resolve_url  # start-up time: only this command loads it

    console = Console(highlight=False)
    source = get_source(args.what)
    url = resolve_url(args.what, args.url)
    console.print(Panel(Text(source.licence), title=f"{source.name}: licence", border_style="cyan"))
    if not url and not (args.out / source.archive).exists():
        raise DataError(f"{source.name} cannot be downloaded automatically", [source.manual])
    console.print(Text(f"source: {url or args.out / source.archive} ({source.size})", style="dim"), soft_wrap=True)
    if source.needs_consent and not args.yes and not _licence_accepted(console, source.name):
        return 1
    with _progress(console, download=True) as progress:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int | None) -> None:
            if phase == "extract":  # counts files, not bytes
                if phase not in tasks:
                    tasks[phase] = progress.add_task("extracting", total=None)
                progress.update(tasks[phase], description=f"extracting: {done} files")
                return
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        data_dir = download(args.what, args.out, url=args.url, sha256=args.sha256, on_progress=report)
    if args.what in DATASET_KINDS:  # a benchmark data set: say where --data-root must point
        from memseg.data.download import find_data_root  # start-up time: only this command loads it

        data_dir = find_data_root(data_dir, get_dataset(args.what).categories or ())
        console.print(
            Text(
                f"{source.name} is ready in {data_dir}; check it with `python -m harness data check "
                f"--dataset {args.what} --data-root {data_dir}`",
                style="green",
            ),
            soft_wrap=True,
        )
        return 0
    console.print(Text(f"{source.name} is ready in {data_dir}", style="green"), soft_wrap=True)
    return 0


def _licence_accepted(console: Console, name: str) -> bool:
    """Ask whether the licence shown is accepted; never when standard input is not a terminal."""
    if not sys.stdin.isatty():
        raise UserError(
            f"refusing to download {name}: its licence must be accepted, and standard input is "
            "not interactive; run again with --yes to accept it"
        )
    if not Confirm.ask(f"Accept the licence above and download {name}?", console=console, default=False):
        console.print(Text("not downloaded", style="yellow"))
        return False
    return True


def _counts(args: argparse.Namespace) -> tuple[int, int, int, int, int]:
    """image_size, n_train, n_test_good, n_defect per type and seed: the positional tail that
    `generate` and `generate_like` share, read from the synth flags in one place."""
    return args.image_size, args.n_train, args.n_test_good, args.n_defect, args.seed


def _generating(console: Console, description: str, write: Callable[[Callable[[int, int], None]], Path]) -> Path:
    """Run a data set generator (`write`, given the on_progress callback) under one progress bar:
    synth and synth --like draw the same bar."""
    with _progress(console) as progress:
        task = progress.add_task(description, total=None)
        return write(lambda done, total: progress.update(task, completed=done, total=total))


def _progress(console: Console, download: bool = False) -> Progress:
    counter = DownloadColumn() if download else MofNCompleteColumn()
    return Progress(
        TextColumn("{task.description}"), BarColumn(), counter, TimeRemainingColumn(), console=console, transient=True
    )
