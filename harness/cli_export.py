"""`harness export --to mlflow|wandb|tensorboard SWEEP`: send a finished sweep to an experiment
tracker, one run per job (harness.trackers). Reads Parquet only; never starts Ray.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from harness import trackers
from harness.cli_common import add_results_flag

OPEN_HINTS = {
    "mlflow": "browse: pip install mlflow && MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {uri}",
    "wandb": "upload later, if you want: wandb sync {dest}/wandb/offline-run-*",
    "tensorboard": "browse: tensorboard --logdir {dest}",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="send a finished sweep to MLflow, W&B (offline) or TensorBoard: one run per job (no Ray)"
    )
    export.add_argument("sweep", metavar="SWEEP", help="the sweep's name (its folder under --results)")
    export.add_argument("--to", required=True, choices=trackers.TRACKERS, help="the tracker")
    add_results_flag(export)
    export.add_argument(
        "--dest",
        help="where the runs go: an MLflow tracking URI or folder, the W&B folder, the TensorBoard log folder "
        "(default under RESULTS/SWEEP: mlruns/, wandb/, tensorboard/)",
    )
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export the sweep; a missing library, an unknown sweep or one with no finished job is a UserError (exit 2)."""
    console = Console(highlight=False, soft_wrap=True)
    with console.status(f"exporting {args.sweep} to {args.to}"):
        done = trackers.export_sweep(args.results, args.sweep, args.to, args.dest)
    console.print(f"{args.sweep}: {len(done.exported)} run(s) sent to {args.to} at {escape(done.dest)}")
    if done.skipped:
        console.print(f"[yellow]{len(done.skipped)} failed job(s) left out[/]: {escape(', '.join(done.skipped))}")
    uri = trackers.to_mlflow.tracking_uri(done.dest) if args.to == "mlflow" else done.dest
    console.print(OPEN_HINTS[args.to].format(uri=uri, dest=escape(done.dest)))
    return 0
