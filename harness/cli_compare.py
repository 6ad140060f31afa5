"""The `compare` sub-command: paired comparisons of ablations or recipe variants within a sweep, or of two sweeps,
from the Parquet files alone (no Ray), and the regression gate for CI pipelines.

Exit status: 0 compared (and the gate, if asked, passed), 1 the gate failed (the candidate is
significantly worse than the baseline by more than the margin on some metric), 2 bad input
(unknown sweep, ablation or variant, rows measured under different protocols or of several
revisions, nothing pairs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from harness import compare, compare_view, revisions, store, tables
from harness.cli_common import add_name_flag, add_results_flag, consoles, sweep_name
from harness.sweep import parse_ablations, parse_variants
from memseg.cli_errors import UserError, user_error
from memseg.names import check_names
from memseg.result import METRICS

EXIT_OK, EXIT_WORSE = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    cmp = subparsers.add_parser(
        "compare",
        help="is a difference real? paired statistics between ablations or sweeps (no Ray)",
        description="Pair runs on (category, seed, config) and report per metric the mean difference, a bootstrap "
        "interval, a Wilcoxon p-value (Holm-corrected), a verdict and the smallest detectable difference.",
    )
    add_results_flag(cmp)
    which = cmp.add_argument_group(
        "what to compare: --name S --ablations BASE,CAND[,...]  or  --name S --variants BASE,CAND[,...]  "
        "or  --baseline A --candidate B"
    )
    add_name_flag(which, "compare ablations (or recipe variants) within this sweep")
    which.add_argument(
        "--ablations",
        help="baseline first, then the candidates (with --name; default full against every "
        "other ablation); with --variants or --baseline/--candidate: only these ablations",
    )
    which.add_argument(
        "--variants",
        help="with --name: the baseline recipe variant first, then the candidates (e.g. official,tootouch); "
        "pairs on category and seed within each ablation",
    )
    which.add_argument("--baseline", help="the baseline sweep (e.g. the current code's results)")
    which.add_argument("--candidate", help="the candidate sweep (e.g. the changed code's results)")
    how = cmp.add_argument_group("statistics")
    how.add_argument("--metrics", help=f"comma-separated, default all: {', '.join(METRICS)}")
    how.add_argument("--effect", type=float, help="also say how many seeds would detect a difference of this many points")
    how.add_argument(
        "--resamples", type=int, default=compare.Settings.resamples, help="bootstrap resamples (default %(default)s)"
    )
    how.add_argument("--seed", type=int, default=compare.Settings.seed, help="bootstrap seed (default %(default)s)")
    how.add_argument("--alpha", type=float, default=compare.Settings.alpha, help="significance level (default %(default)s)")
    out = cmp.add_argument_group("output")
    fmt = out.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="Markdown tables instead of terminal tables")
    fmt.add_argument("--json", action="store_true", help="one JSON object with every number")
    out.add_argument(
        "--by-revision",
        action="store_true",
        help="with --name: compare revision by revision (default: a sweep holding rows of several revisions "
        "is refused); two sweeps must each hold one revision",
    )
    out.add_argument(
        "--fail-if-worse",
        type=float,
        metavar="MARGIN",
        help="exit 1 when the candidate is significantly worse by more than MARGIN points on any metric",
    )
    cmp.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    console, errors = consoles()
    args.name = sweep_name(args, errors)
    try:
        by_revision = build_studies(args)
    except ValueError as err:  # ProtocolMismatch and MixedRevisions are UserErrors already
        raise user_error(err) from None
    studies = [study for _, study in by_revision]
    for study in studies:
        empty = [c for c in study.comparisons if not c.pairs]
        if empty:  # a gate that compared nothing must not pass
            c = empty[0]
            first = f"; e.g. {c.unpaired[0].job_id}: {c.unpaired[0].reason}" if c.unpaired else ""
            raise UserError(
                f"{c.name}: no run of {c.candidate.label} pairs with a run of {c.baseline.label} "
                f"(same category, seed and config){first}"
            )
    labels = {m: METRICS[m] for m in studies[0].metrics}
    if args.json:
        text = compare_view.to_json(studies[0]) if len(studies) == 1 else _json_by_revision(by_revision)
        console.out(text, highlight=False)
    else:
        for revision, study in by_revision:
            if len(by_revision) > 1:  # --by-revision: each revision under its own heading
                heading = f"{args.name} · revision {revision}"
                if args.markdown:
                    console.out(f"## {heading}\n", highlight=False)
                else:
                    console.rule(heading)
            for table in compare_view.comparison_tables(study, labels):
                if args.markdown:
                    console.out(tables.to_markdown(table), highlight=False)
                else:
                    console.print(tables.to_rich(table))
    if args.fail_if_worse is None:
        return EXIT_OK
    failed = [f for study in studies for f in compare.regressions(study, args.fail_if_worse)]
    for comparison, e in failed:
        errors.print(
            f"[red]regression:[/] {comparison.name}: {labels[e.metric]} {e.diff:+.2f} points "
            f"[{e.ci_low:+.2f}, {e.ci_high:+.2f}], p Holm {e.p_holm:.2g}: worse than the margin of {args.fail_if_worse:g}",
            markup=True,
            highlight=False,
        )
    if failed:
        return EXIT_WORSE
    errors.print(f"gate passed: no metric is significantly worse by more than {args.fail_if_worse:g} points", highlight=False)
    return EXIT_OK


def _json_by_revision(studies: list[tuple[int | None, compare.Study]]) -> str:
    """--json --by-revision: one object, a study per revision."""
    return json.dumps({f"revision {r}": json.loads(compare_view.to_json(s)) for r, s in studies}, indent=2)


def build_studies(args: argparse.Namespace) -> list[tuple[int | None, compare.Study]]:
    """The comparisons the flags ask for, each with its revision: one, or with --by-revision one
    per revision of --name. Rows of several revisions are never pooled (harness.revisions.split):
    without --by-revision a sweep holding several is refused. Two sweeps (--baseline, --candidate)
    must each hold one revision, which may differ: that is what a regression gate compares."""
    if args.name is None or args.baseline is not None or args.candidate is not None:
        return [(None, build_study(args))]
    rows = _rows(args.results, args.name)
    groups = revisions.split(rows, args.by_revision, f"sweep {args.name!r}")
    if len(groups) == 1:
        return [(groups[0][0], build_study(args, rows))]
    return [(r, build_study(args, part, f"{args.name} · revision {r}")) for r, part in groups]


def build_study(args: argparse.Namespace, sweep_rows: pd.DataFrame | None = None, label: str | None = None) -> compare.Study:
    """The comparison the flags ask for (of `sweep_rows` when given: one revision of --name,
    titled `label`). ValueError (with the reason) for any user error."""
    metrics = _metrics(args.metrics)
    if args.fail_if_worse is not None and args.fail_if_worse < 0:
        raise ValueError(f"--fail-if-worse takes a margin in points >= 0, got {args.fail_if_worse:g}")
    settings = compare.Settings(resamples=args.resamples, seed=args.seed, alpha=args.alpha, effect=args.effect)
    two_sweeps = args.baseline is not None or args.candidate is not None
    if two_sweeps and args.name is not None:
        raise ValueError("give either --name S (ablations within it) or --baseline A --candidate B (two sweeps), not both")
    if two_sweeps and args.variants:
        raise ValueError("--variants compares the recipe variants within one sweep: give --name S, not --baseline/--candidate")
    if two_sweeps:
        if args.baseline is None or args.candidate is None:
            raise ValueError("comparing two sweeps needs both --baseline SWEEP and --candidate SWEEP")
        ablations = parse_ablations(args.ablations) if args.ablations else None
        base, cand = _rows(args.results, args.baseline), _rows(args.results, args.candidate)
        revisions.split(base, what=f"the baseline sweep {args.baseline!r}")  # each side one revision
        revisions.split(cand, what=f"the candidate sweep {args.candidate!r}")
        return compare.compare_sweeps(
            base,
            cand,
            metrics,
            settings,
            baseline=args.baseline,
            candidate=args.candidate,
            ablations=ablations,
        )
    if args.name is None:
        raise ValueError("say what to compare: --name S [--ablations full,no_memory] or --baseline A --candidate B")
    rows = _rows(args.results, args.name) if sweep_rows is None else sweep_rows
    if sweep_rows is None:
        revisions.split(rows, what=f"sweep {args.name!r}")
    if args.variants:
        variants = parse_variants(args.variants)
        if len(variants) < 2:
            raise ValueError(f"--variants needs a baseline and at least one candidate, got {', '.join(variants)}")
        ablations = parse_ablations(args.ablations) if args.ablations else None
        return compare.compare_variants(rows, variants[0], list(variants[1:]), metrics, settings, label or args.name, ablations)
    if args.ablations:
        names = parse_ablations(args.ablations)
    else:
        present = tables.ablation_order(list(rows["ablation"].unique()))
        names = ("full", *[a for a in present if a != "full"])
    if len(names) < 2:
        present = sorted(set(store.variants_of(rows)) - {""})
        hint = f"; to compare its recipe variants: --variants {','.join(present)}" if len(present) > 1 else ""
        raise ValueError(f"--ablations needs a baseline and at least one candidate, got {', '.join(names)}{hint}")
    return compare.compare_ablations(rows, names[0], list(names[1:]), metrics, settings, sweep=label or args.name)


def _rows(results: Path, sweep: str):
    sweeps = store.list_sweeps(results)
    if sweep not in sweeps:
        raise ValueError(f"no sweep {sweep!r} under {results}; found: {', '.join(sweeps) or 'none'}")
    rows = store.load_results(results, sweep)
    if rows.empty:
        raise ValueError(f"sweep {sweep!r} under {results} has no finished jobs yet")
    return rows


def _metrics(text: str | None) -> tuple[str, ...]:
    if not text:
        return tuple(METRICS)
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError(f"unknown metrics {[text]}; valid: {', '.join(METRICS)}")
    return check_names("metrics", names, METRICS)
