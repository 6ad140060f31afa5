"""`harness export --to mlflow|wandb|tensorboard SWEEP`: send a finished sweep to an experiment
tracker, one run per job (harness.trackers); `harness export --to mvtec-maps|mvtec-ad2-submission
SWEEP --out DIR`: write the files the official evaluation tools read (harness.map_export). Reads the
result store only; never starts Ray.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from harness import map_export, trackers
from harness.cli_common import add_results_flag
from memseg.cli_errors import UserError

OPEN_HINTS = {
    "mlflow": "browse: pip install mlflow && MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {uri}",
    "wandb": "upload later, if you want: wandb sync {dest}/wandb/offline-run-*",
    "tensorboard": "browse: tensorboard --logdir {dest}",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export",
        help="send a finished sweep to MLflow, W&B (offline) or TensorBoard, or write its anomaly maps as the official "
        "evaluation tools read them (no Ray)",
    )
    export.add_argument("sweep", metavar="SWEEP", help="the sweep's name (its folder under --results)")
    export.add_argument(
        "--to",
        required=True,
        choices=(*trackers.TRACKERS, *map_export.TARGETS),
        help="a tracker; or mvtec-maps (float32 TIFF per test image at its original size, jobs run with --save-maps), "
        "mvtec-ad2-submission (MVTec AD 2's upload folder, jobs run with --predict-private)",
    )
    export.add_argument("--out", help="for mvtec-maps and mvtec-ad2-submission: a new (or empty) folder to write")
    export.add_argument("--seed", type=int, help="for the map exports: the seed whose jobs to export (when there are several)")
    export.add_argument("--ablation", help="for the map exports: the ablation whose jobs to export (default: any, if one)")
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
    if args.to in map_export.TARGETS:
        if not args.out:
            raise UserError(f"--to {args.to} writes files: say where with --out DIR")
        with console.status(f"writing {args.to} of {args.sweep}"):
            written = map_export.export(args.results, args.sweep, args.to, args.out, args.seed, args.ablation)
        console.print(f"{args.sweep}: {written.files} file(s) from {len(written.jobs)} job(s) in {escape(str(written.out))}")
        for note in written.notes:
            console.print(f"[yellow]warning:[/] not exported: {escape(note)}")
        return 0
    if args.out or args.seed is not None or args.ablation:
        raise UserError(f"--out, --seed and --ablation are for --to {' or '.join(map_export.TARGETS)}; {args.to} takes --dest")
    with console.status(f"exporting {args.sweep} to {args.to}"):
        done = trackers.export_sweep(args.results, args.sweep, args.to, args.dest)
    console.print(f"{args.sweep}: {len(done.exported)} run(s) sent to {args.to} at {escape(done.dest)}")
    for note in done.notes:
        console.print(f"[yellow]warning:[/] {escape(note)}")
    if done.skipped:
        console.print(f"[yellow]{len(done.skipped)} failed job(s) left out[/]: {escape(', '.join(done.skipped))}")
    uri = trackers.to_mlflow.tracking_uri(done.dest) if args.to == "mlflow" else done.dest
    console.print(OPEN_HINTS[args.to].format(uri=uri, dest=escape(done.dest)))
    return 0
