"""What the harness's command lines share: the results-root flag, the sweep-name flag (`--name`,
the word `run` uses for it; `--sweep` was its spelling in `status`, `report` and `compare`, where it
still works for one release with a deprecation line), and the consoles they print on.

Light on purpose (no Ray, no torch): every sub-command imports it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

OLD_SWEEP_DEST = "deprecated_sweep"  # where `--sweep NAME` lands in status, report and compare


def add_results_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--results: the folder that holds one folder per sweep."""
    parser.add_argument("--results", type=Path, default=Path("results"), help="results root (default ./results)")


def add_name_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """--name: a sweep's name, its folder under --results; and its old spelling --sweep, hidden."""
    parser.add_argument("--name", help=help)
    parser.add_argument("--sweep", dest=OLD_SWEEP_DEST, help=argparse.SUPPRESS)


def sweep_name(args: argparse.Namespace, errors: Console) -> str | None:
    """The sweep named by --name, or by the old --sweep with a deprecation line; None when neither."""
    old = getattr(args, OLD_SWEEP_DEST, None)
    if old is not None and args.name is None:
        errors.print(
            f"[yellow]deprecated:[/] --sweep {old} names a sweep here; say --name {old} (--sweep keeps working "
            "until the next release, and in `run` it is the sweep file)",
            markup=True,
            highlight=False,
        )
        return str(old)
    if old is not None and old != args.name:
        raise argparse.ArgumentTypeError(f"--name {args.name} and --sweep {old} name two sweeps: give --name alone")
    return args.name


def consoles() -> tuple[Console, Console]:
    """stdout and stderr consoles; wide when not a terminal (logs of `ray job submit`, pipes), so
    the tables are not squeezed to 80 columns."""
    out, err = Console(log_path=False), Console(stderr=True, log_path=False)
    for console in (out, err):
        if not console.is_terminal:
            console.width = max(console.width, 160)
    return out, err
