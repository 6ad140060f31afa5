"""The `status` and `report` sub-commands: they read the Parquet store alone and never import Ray.
`status` counts each sweep's jobs (done / failed / pending, by revision); `report` prints its tables
(harness.report, rendered by harness.tables) and writes the HTML report on --html.

Exit status: 0, or 2 when the sweep named does not exist, --html names one file for several sweeps,
or a sweep's rows mix revisions (see --by-revision).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import curves_view, paper_tables, paths, report, revisions, search_view, store, tables, trials_store
from harness.cli_common import add_name_flag, add_results_flag, consoles, sweep_name
from harness.sweep import expand, spec_from_dict
from memseg.cli_errors import UserError, non_negative_float

EXIT_OK = 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """`status` and `report`: they read Parquet only and never start Ray."""
    status = subparsers.add_parser("status", help="done / failed / pending jobs per sweep (no Ray)")
    add_results_flag(status)
    add_name_flag(status, "only this sweep")
    status.set_defaults(func=cmd_status)

    rep = subparsers.add_parser("report", help="print the result tables from the Parquet files (no Ray)")
    add_results_flag(rep)
    add_name_flag(rep, "only this sweep")
    rep.add_argument("--markdown", action="store_true", help="Markdown instead of terminal tables")
    rep.add_argument(
        "--layout",
        choices=("summary", "paper"),
        default="summary",
        help="summary (default): a table per ablation; paper: a table per metric as papers print them, categories "
        "as columns in the paper's order, the average first, a row per ablation or variant, the published row above",
    )
    rep.add_argument(
        "--format",
        choices=("markdown", "latex", "csv"),
        help="with --layout paper: markdown (default), latex (booktabs, the best row of each column in bold) or csv",
    )
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


def _pick_sweeps(results: Path, sweep: str | None, console: Console) -> list[str]:
    """The sweeps to show (all, or the one named; none: said on `console`). UserError when the one
    named does not exist."""
    sweeps = store.list_sweeps(results)
    if sweep is not None and sweep not in sweeps:
        raise UserError(f"no sweep {sweep!r} under {results}; found: {', '.join(sweeps) or 'none'}")
    if not sweeps:
        console.print(f"no sweeps under {results}")
    return sweeps if sweep is None else [sweep]


def cmd_status(args: argparse.Namespace) -> int:
    """Each sweep's jobs by state, then each recipe search's trials (`--name` either kind)."""
    console, errors = consoles()
    name = sweep_name(args, errors)
    searches = [s for s in trials_store.list_searches(args.results) if name in (None, s)]
    if (name is not None and not searches) or (name is None and (store.list_sweeps(args.results) or not searches)):
        _sweeps_status(args.results, name, console, errors)  # a folder of searches alone says nothing of sweeps
    found: dict[str, pd.DataFrame] = {}
    for search in searches:
        try:
            found[search] = trials_store.load_trials(args.results, search)
        except ValueError as err:  # an unreadable trial file: named, and the other searches shown
            errors.print(f"[yellow]warning:[/] {search}: {escape(str(err))}", markup=True, highlight=False)
    if found:
        console.print(search_view.searches_table(found))
    return EXIT_OK


def _sweeps_status(results: Path, name: str | None, console: Console, errors: Console) -> None:
    """The sweeps' table (all, or the one named) and their failed jobs."""
    sweeps = _pick_sweeps(results, name, console)
    if not sweeps:
        return
    table = Table(title=f"sweeps under {results}")
    specs = {sweep: _spec_jobs(results, sweep, errors) for sweep in sweeps}
    variants = any(v for *_, v in specs.values())  # a column only when some sweep has recipe variants
    left = ("sweep", "profile", "dataset", *(("variants",) if variants else ()))
    for name in (*left, "jobs", "done", "failed", "pending", "other revision", "damaged", "other results", "results by revision"):
        table.add_column(name, justify="left" if name in left else "right")
    failures: list[tuple[str, str, str]] = []
    notes: list[str] = []
    current, stale = store.current_revision(), 0
    for sweep in sweeps:
        read = store.read_sweep(results, sweep)  # the one read of the sweep's rows
        rows, states = read.rows, read.states
        notes += [f"{sweep}: {note}" for note in read.notes()]
        ids, prof, dataset, names = specs[sweep]
        tally = store.Tally.of(ids or sorted(states), states)  # the count `harness run` plans with
        damaged = [j for j in read.damaged if j in (ids or read.damaged)]
        other = len(set(states) - set(ids or states))
        pending = len(tally.pending) - len(damaged)  # a damaged job is not committed, but it ran: said apart
        counts = (tally.total, len(tally.done), len(tally.failed), pending, len(tally.stale), len(damaged), other)
        by_revision = rows["revision"].value_counts().sort_index()
        stale += len(tally.stale)
        table.add_row(
            sweep, prof, dataset, *((", ".join(names),) if variants else ()), *map(str, counts),
            ", ".join(f"{r}: {n}" for r, n in by_revision.items()),
        )  # fmt: skip
        for r in store.records(rows[rows["job_id"].isin(tally.failed)]):
            failures.append((sweep, str(r.job_id), str(r.error).splitlines()[0][:160] if r.error else ""))
    if stale:
        table.caption = (
            f"{stale} job(s) have a result of another revision than this code's ({current}): `harness run` re-runs "
            "them unless --accept-revision N (docs/results.md)"
        )
    console.print(table)
    for note in notes:
        errors.print(f"[yellow]warning:[/] {escape(note)}", markup=True, highlight=False)
    if failures:
        ftable = Table(title="failed jobs (--retry-failed re-runs them)")
        for name in ("sweep", "job", "error"):
            ftable.add_column(name)
        for row in failures:
            ftable.add_row(*row)
        console.print(ftable)


def _read_noting(results: Path, sweep: str, errors: Console) -> pd.DataFrame:
    """The rows of a sweep that the one reader counts; what it could not count is named on `errors`."""
    read = store.read_sweep(results, sweep)
    for note in read.notes():
        errors.print(f"[yellow]warning:[/] {sweep}: {escape(note)}", markup=True, highlight=False)
    return read.rows


def _spec_jobs(results: Path, sweep: str, errors: Console) -> tuple[list[str], str, str, tuple[str, ...]]:
    """The job ids, profile, dataset and variant names of a sweep's sweep.yaml; no ids (and "?") without one."""
    text = store.read_spec(results, sweep)
    if text is None:
        return [], "?", "?", ()
    try:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError("it is not a mapping of sweep keys")
        spec = spec_from_dict(data)
        return [c.job_id for c in expand(spec)], spec.profile or "?", spec.dataset, tuple(spec.variants)
    except (ValueError, yaml.YAMLError) as err:
        errors.print(f"{sweep}: cannot read its sweep.yaml ({err}); counting its results only", highlight=False)
        return [], "?", "?", ()


def print_summary(
    console: Console, rows: pd.DataFrame, sweep: str, markdown: bool, price: float | None = None, by_revision: bool = False
) -> None:
    """The tables of a sweep's `rows` (as its command loaded them); rows of several revisions are
    never averaged together (harness.revisions): one set of tables per revision with `by_revision`,
    else MixedRevisions."""
    groups = revisions.split(rows, by_revision, f"sweep {sweep!r}")
    for revision, group in groups:
        label = sweep if len(groups) == 1 else f"{sweep} · revision {revision}"
        for table in report.summary_tables(group, label, price):
            if markdown:
                console.out(tables.to_markdown(table))
            else:
                console.print(tables.to_rich(table))
    dirty = revisions.dirty_warning(rows)
    if dirty and markdown:
        console.out(f"> **warning:** {dirty}\n")
    elif dirty:
        console.print(f"[yellow]warning:[/] {escape(dirty)}", highlight=False)


def cmd_report(args: argparse.Namespace) -> int:
    console, errors = consoles()
    name = sweep_name(args, errors)
    if name is not None and trials_store.has_trials(args.results, name):  # a recipe search (harness tune)
        return _report_search(args, name, console, errors)
    sweeps = _pick_sweeps(args.results, name, console)
    if name is None and (searches := trials_store.list_searches(args.results)):  # on stderr: --markdown stays markdown
        errors.print(f"recipe searches not shown here: {', '.join(searches)} (harness report --name SEARCH)", highlight=False)
    if not sweeps:
        return EXIT_OK
    if args.html and len(sweeps) > 1:
        raise UserError(
            f"--html {args.html} names one file but there are {len(sweeps)} sweeps: add --name NAME, "
            "or give --html alone for RESULTS/<sweep>/report.html each"
        )
    if args.format and args.layout != "paper":
        raise UserError(f"--format {args.format} is for --layout paper; the summary takes --markdown")
    loaded = {sweep: _read_noting(args.results, sweep, errors) for sweep in sweeps}  # each sweep read once
    for sweep, rows in loaded.items():  # every sweep is checked before anything is printed or written
        revisions.split(rows, args.by_revision, f"sweep {sweep!r}")  # MixedRevisions: a UserError
    if args.layout == "paper":
        for sweep, rows in loaded.items():
            groups = revisions.split(rows, args.by_revision, f"sweep {sweep!r}")
            for revision, group in groups:
                label = sweep if len(groups) == 1 else f"{sweep} · revision {revision}"
                _check_one_dataset(sweep, group)
                console.out(paper_tables.render(paper_tables.paper_tables(group, label), args.format or "markdown"), end="")
        return EXIT_OK
    for sweep, rows in loaded.items():
        print_summary(console, rows, sweep, args.markdown, args.price_per_gpu_hour, args.by_revision)
        if args.curves:
            for part in curves_view.renderables(args.results, sweep, rows, markdown=args.markdown):
                console.out(part) if isinstance(part, str) else console.print(part)
        if args.html is not None:
            _write_html(args, sweep, rows, errors)
    return EXIT_OK


def _check_one_dataset(sweep: str, rows: pd.DataFrame) -> None:
    """A paper's table is of one data set: its categories and its metrics."""
    datasets = sorted(set(rows["dataset"].dropna()))
    if len(datasets) > 1:
        raise UserError(f"sweep {sweep!r} mixes data sets ({', '.join(datasets)}); a paper table holds one data set")


def _report_search(args: argparse.Namespace, name: str, console: Console, errors: Console) -> int:
    """A search's trials (harness.search_view); with --html its page."""
    try:
        rows = trials_store.load_trials(args.results, name)
    except ValueError as err:
        raise UserError(str(err)) from None
    for part in search_view.renderables(rows, name):
        console.print(part, highlight=False) if isinstance(part, str) else console.print(part)
    if args.html is not None:
        page = search_view.write_page(rows, name, Path(args.html) if args.html else paths.report_path(args.results, name))
        errors.print(f"HTML report of search {name}: {page}", highlight=False)
    return EXIT_OK


def _write_html(args: argparse.Namespace, sweep: str, rows: pd.DataFrame, errors: Console) -> None:
    """The sweep's HTML report; with --by-revision one page per revision, named <stem>-revision-N.html."""
    from harness import report_html  # start-up time: matplotlib only when asked for

    path = Path(args.html) if args.html else paths.report_path(args.results, sweep)
    found = revisions.counts(rows)
    pages = [(None, path)] if len(found) <= 1 else [(r, path.with_name(f"{path.stem}-revision-{r}{path.suffix}")) for r in found]
    for revision, page in pages:
        written = report_html.write_report(args.results, sweep, page, args.price_per_gpu_hour, revision, rows=rows)
        errors.print(f"HTML report of {sweep}: {written} ({written.stat().st_size / 1024:.0f} KB)", highlight=False)
