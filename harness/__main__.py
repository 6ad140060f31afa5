"""Command line of the harness: `python -m harness run|tune|status|report|data|compare|export ...`.

Each sub-command lives in its own module, which adds its parser through `register(subparsers)`
and sets `func`, a handler that takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys

from harness import cli_compare, cli_data, cli_export, cli_results, cli_run, cli_tune
from memseg.cli_errors import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Benchmark MemSeg on MVTec AD categories x seeds x ablations with Ray.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    cli_run.register(subparsers)
    cli_tune.register(subparsers)
    cli_results.register(subparsers)
    cli_data.register(subparsers)
    cli_compare.register(subparsers)
    cli_export.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)  # a UserError: one message, exit 2; a bug: its traceback, exit 1


if __name__ == "__main__":
    sys.exit(main())
