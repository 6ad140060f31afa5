"""Command line for one job without Ray: `python -m memseg train ...` and `python -m memseg predict ...`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from memseg.ablations import ABLATIONS
from memseg.caveats import RANDOM_INIT_REAL_DATA, random_init_on_real_data
from memseg.cli_errors import UserError, device_name, image_size, non_negative_int, positive_int, run_command, user_error
from memseg.cli_recipe import add_recipe_flags, recipe_overrides
from memseg.config import STEP_MODES, JobConfig, train_images_needed
from memseg.data.registry import DATASET_KINDS
from memseg.profiles import PROFILES, profile
from memseg.result import METRICS, THRESHOLDED, JobResult, Progress

# The commands import torch, the job, the model and rich inside their functions, not here: --help and
# a refused flag answer before any of them is loaded (start-up time). Types only, for the same reason:
if TYPE_CHECKING:
    from memseg.curves import TrainingCurves
    from memseg.official import EncoderDistance


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m memseg", description="Train and run MemSeg without Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_import_official(sub)
    _add_predict(sub)
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train on one category and evaluate the final model")
    train.add_argument("--data-root", required=True, help="folder holding <category>/train, <category>/test, ...")
    train.add_argument("--category", required=True)
    train.add_argument("--dataset", choices=DATASET_KINDS, default="mvtec")
    train.add_argument("--profile", choices=sorted(PROFILES), default="paper")
    train.add_argument("--ablation", choices=list(ABLATIONS), default="full")
    train.add_argument("--seed", type=non_negative_int, default=0)
    add_recipe_flags(train)  # the same recipe flags as `python -m harness run`
    train.add_argument("--device", type=device_name, default="auto", help="auto | cpu | cuda | cuda:N")
    train.add_argument(
        "--step-mode",
        choices=STEP_MODES,
        default="eager",
        help="eager (default) | auto (a CUDA graph on CUDA when capture works, else eager) | graph | compile",
    )
    train.add_argument("--out", default="results/memseg", help="where the model directory is written")
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")
    train.set_defaults(func=cmd_train)


def _add_import_official(sub: argparse._SubParsersAction) -> None:
    official = sub.add_parser(
        "import-official",
        help="evaluate the official released weights (areylng/MemSeg model-<category>.tch) with our inference and metrics",
    )
    official.add_argument("--weights", required=True, help="an official model-<category>.tch state dict")
    official.add_argument("--category", required=True)
    official.add_argument("--data-root", required=True, help="folder holding <category>/train, <category>/test, ...")
    official.add_argument("--dataset", choices=DATASET_KINDS, default="mvtec")
    official.add_argument("--image-size", type=image_size, default=256, help="the official weights were trained at 256 px")
    official.add_argument(
        "--backbone-weights",
        default="imagenet",
        help="the feature encoder (stem, layer1-3, memory bank), officially ImageNet's ResNet18: imagenet | none | PATH",
    )
    official.add_argument("--device", type=device_name, default="auto", help="auto | cpu | cuda | cuda:N")
    official.add_argument("--out", help="write the imported model (with its memory bank) and scores here, loadable by predict")
    official.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")
    official.set_defaults(func=cmd_import_official)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="anomaly heatmap and score for one image, or for every image of a folder")
    predict.add_argument("--model", required=True, help="a model directory written by `train`")
    which = predict.add_mutually_exclusive_group(required=True)
    which.add_argument("--image", help="one image; --out is the PNG to write")
    which.add_argument(
        "--images",
        metavar="FOLDER|GLOB",
        help="every image of a folder, or of a glob such as 'parts/*.png'; --out is a folder that gets predictions.csv "
        "(one row per image: score, anomalous yes/no at the model's calibrated threshold, heatmap) and heatmaps/",
    )
    predict.add_argument("--out", required=True, help="--image: the PNG to write (image with heatmap); --images: a folder")
    predict.add_argument(
        "--device", type=device_name, help="default: cpu for --image; for --images auto (the GPU when there is one)"
    )
    predict.add_argument("--batch-size", type=positive_int, default=16, help="--images: images per forward pass (default 16)")
    predict.set_defaults(func=cmd_predict)


def config_from_args(args: argparse.Namespace) -> JobConfig:
    """Profile values first, then every flag the user gave explicitly (memseg.cli_recipe)."""
    values = profile(args.profile)
    values.update(category=args.category, data_root=str(Path(args.data_root).resolve()), dataset=args.dataset)
    values.update(ablation=args.ablation, seed=args.seed, device=args.device, out_dir=args.out, step_mode=args.step_mode)
    values.update(recipe_overrides(args))
    return JobConfig.from_dict(values)


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from memseg.job import run

    console = Console(stderr=True)
    config = checked_config(args)
    if random_init_on_real_data(config.dataset, config.backbone_weights):
        console.print(f"[yellow]warning:[/] {RANDOM_INIT_REAL_DATA}", highlight=False, soft_wrap=True)
    console.print(
        f"MemSeg [bold]{config.category}[/bold] ({config.dataset}), ablation {config.ablation}, seed {config.seed}, "
        f"{config.image_size} px, {config.steps} steps, backbone {config.backbone_weights}"
    )
    with _progress(console) as on_progress:
        result = run(config, on_progress=on_progress)
    if args.json:
        print(json.dumps(result_to_json(result)))
    else:
        Console().print(metrics_table(result))
        if result.curves is not None and result.curves.has_validation:
            Console().print(validation_table(result.curves))
        console.print(f"model, scores and curves written to {result.artefacts_dir}")
    return 0


def checked_config(args: argparse.Namespace) -> JobConfig:
    """The job `train` would run, with everything it will read checked (`preflight`): all that
    `train` does before it builds a model, so a mistake costs seconds. UserError otherwise."""
    try:
        config = config_from_args(args)
    except ValueError as error:
        raise user_error(error) from None
    preflight(config)
    return config


def preflight(config: JobConfig) -> None:
    """What the job will read, checked without decoding the data or building the model."""
    from memseg.input_checks import check_data, check_texture_dir, check_weights

    check_data(config.dataset, config.data_root or "", [config.category], {config.category: train_images_needed(config)})
    check_weights(config.backbone_weights)
    check_texture_dir(config.texture_dir)


def cmd_import_official(args: argparse.Namespace) -> int:
    """Official weights -> our MemSeg -> memory bank (first N sorted normal images) -> our metrics.
    Every user error (missing or foreign weights file, bad data) is one line and exit 2."""
    from rich.console import Console

    from memseg.input_checks import check_data, check_weights
    from memseg.job import run_official
    from memseg.official import UNUSED_MODULES, read_official

    console = Console(stderr=True)
    try:
        state = read_official(args.weights)
        check_data(args.dataset, args.data_root, [args.category])
        check_weights(args.backbone_weights)
        config = JobConfig(
            category=args.category,
            data_root=str(Path(args.data_root).resolve()),
            dataset=args.dataset,
            image_size=args.image_size,
            backbone_weights=str(Path(args.weights).resolve()),  # names where the weights came from (job id)
            device=args.device,
            out_dir=args.out,
        )
    except ValueError as error:  # DataError is a UserError and passes through
        raise user_error(error) from None
    with _progress(console) as on_progress:
        result, imported = run_official(config, state, on_progress=on_progress, feature_weights=args.backbone_weights)
    if args.json:
        data = result_to_json(result)
        data["official_import"] = {
            "landed": len(imported.landed),
            "ignored": list(imported.ignored),
            "folded_biases": imported.folded_biases,
            "encoder_distance": {d.name: d.max_abs for d in imported.encoder_distance},
        }
        print(json.dumps(data))
        return 0
    Console().print(metrics_table(result))
    if imported.encoder_distance:
        Console().print(encoder_distance_table(imported.encoder_distance, args.backbone_weights))
    console.print(
        f"{len(imported.landed)} official keys loaded ({imported.folded_biases} conv biases folded into BN); "
        f"{len(imported.ignored)} keys ignored, of modules the official forward never runs: {', '.join(UNUSED_MODULES)}",
        soft_wrap=True,
    )
    if result.artefacts_dir:
        console.print(f"model and scores written to {result.artefacts_dir}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    if args.images is not None:
        return predict_folder(args)
    args.device = args.device or "cpu"
    import torch
    from rich.console import Console

    from memseg.artefacts import load_model
    from memseg.data.images import DECODE_ERRORS, read_rgb, resize_rgb
    from memseg.heatmap import overlay, write_png
    from memseg.input_checks import check_model_dir
    from memseg.metrics import image_scores

    out = check_png_out(Path(args.out))  # before any work: where the answer goes
    model_dir = check_model_dir(args.model)
    image_path = Path(args.image)
    if not image_path.is_file():
        raise UserError(f"image {image_path} does not exist; expected an image file (.png, .jpg, ...)")
    try:
        pixels = read_rgb(image_path)
    except DECODE_ERRORS as error:
        raise UserError(f"image {image_path} cannot be read as an image ({error}); expected a PNG, JPEG, ...") from None
    try:
        model, config = load_model(model_dir, args.device)
    except (OSError, ValueError, RuntimeError) as error:
        raise user_error(error, f"the model in {model_dir} cannot be loaded: ") from None
    image = resize_rgb(pixels, config.image_size)  # (3, S, S) uint8
    with torch.no_grad():
        anomaly = model.anomaly_map(model(image[None].float().div(255).to(args.device)))[0].cpu()
    score = float(image_scores(anomaly[None], top_k=config.top_k)[0])
    try:
        write_png(overlay(image, anomaly), out)
    except OSError as error:
        raise UserError(f"--out {out} cannot be written: {error.strerror or error}") from None
    Console(soft_wrap=True).print(f"{args.image}: anomaly score {score:.4f}; heatmap written to {out}")
    return 0


PREDICTIONS_CSV = "predictions.csv"
HEATMAPS_DIR = "heatmaps"
CSV_COLUMNS = ("path", "score", "anomalous", "heatmap")


def predict_folder(args: argparse.Namespace) -> int:
    """`predict --images`: every image of a folder (or glob), in batches on the device, one CSV row
    each (score; anomalous yes/no at the image threshold the model directory carries, empty when it
    carries none; the heatmap's path) and one heatmap PNG each. Says which rule made the threshold."""
    import csv

    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from memseg.artefacts import load_model, load_thresholds
    from memseg.data.images import DECODE_ERRORS, read_rgb, resize_rgb
    from memseg.heatmap import overlay, write_png
    from memseg.input_checks import check_model_dir, find_images
    from memseg.job import resolve_device
    from memseg.metrics import image_scores

    model_dir = check_model_dir(args.model)
    images = find_images(args.images)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; with --images it names the folder for {PREDICTIONS_CSV} and {HEATMAPS_DIR}/")
    try:
        device = resolve_device(args.device or "auto")
        model, config = load_model(model_dir, device)
        thresholds = load_thresholds(model_dir)
    except (OSError, ValueError, RuntimeError) as error:
        raise user_error(error, f"the model in {model_dir} cannot be loaded: ") from None
    console = Console(soft_wrap=True, stderr=True)
    (out / HEATMAPS_DIR).mkdir(parents=True, exist_ok=True)
    names = _heatmap_names(images)
    rows = []
    columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar, torch.no_grad():
        task = bar.add_task("predict", total=len(images))
        for first in range(0, len(images), args.batch_size):
            batch_paths = images[first : first + args.batch_size]
            pixels = []
            for path in batch_paths:
                try:
                    pixels.append(resize_rgb(read_rgb(path), config.image_size))
                except DECODE_ERRORS as error:
                    raise UserError(f"image {path} cannot be read as an image ({error}); expected a PNG, JPEG, ...") from None
            batch = torch.stack(pixels)  # (B, 3, S, S) uint8
            maps = model.anomaly_map(model(batch.float().div(255).to(device))).float().cpu()
            scores = image_scores(maps, top_k=config.top_k)
            for path, image, anomaly, score in zip(batch_paths, batch, maps, scores.tolist()):
                heatmap = out / HEATMAPS_DIR / names[path]
                write_png(overlay(image, anomaly), heatmap)
                verdict = "" if thresholds is None else ("yes" if score >= thresholds.image else "no")
                rows.append((str(path), f"{score:.6f}", verdict, str(heatmap)))
            bar.advance(task, len(batch_paths))
    table = out / PREDICTIONS_CSV
    with open(table, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([CSV_COLUMNS, *rows])
    said = Console(soft_wrap=True, highlight=False)
    said.print(f"{len(rows)} image(s) on {device}: {table}, heatmaps in {out / HEATMAPS_DIR}")
    if thresholds is None:
        said.print(
            "anomalous: left empty; this model carries no calibrated threshold (train it with --calibrate-images K, "
            "or on MVTec AD 2, whose validation/ calibrates it)"
        )
    else:
        flagged = sum(r[2] == "yes" for r in rows)
        said.print(f"{flagged} anomalous at image score >= {thresholds.image:.6f}: {thresholds.describe()}")
    return 0


def _heatmap_names(images: list[Path]) -> dict[Path, str]:
    """A heatmap file name per image: its stem, numbered when two images share one."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in images:
        name, n = f"{path.stem}.png", 1
        while name in used:
            n += 1
            name = f"{path.stem}-{n}.png"
        used.add(name)
        names[path] = name
    return names


def check_png_out(out: Path) -> Path:
    """`out` when it can name the PNG `predict` writes: a .png file name, not a folder, under a
    folder (or a place one can be made), else a UserError saying what to give."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; expected the .png file to write, e.g. {out / 'heatmap.png'}")
    if out.suffix.lower() != ".png":
        raise UserError(
            f"--out {out}: expected a .png file name (the image with its heatmap is a PNG), got {out.suffix or 'no suffix'}"
        )
    for folder in out.parents:
        if folder.exists():
            if not folder.is_dir():
                raise UserError(f"--out {out} cannot be written: {folder} is a file, not a folder")
            break
    return out


def result_to_json(result: JobResult) -> dict:
    """The result as plain JSON: NaN metrics become null, and the prediction pictures (PNG/GIF
    bytes in `visuals`) stay out; `--out` writes the model and scores to disk instead. The curves
    (the validation curve with --val-every) as memseg.artefacts writes them."""
    from memseg.artefacts import curves_to_json

    data = dataclasses.asdict(dataclasses.replace(result, visuals=None, curves=None, maps=()))
    del data["visuals"], data["maps"]  # pictures and maps are files (harness run --save-maps), never JSON
    data["metrics"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.metrics.items()}
    data["curves"] = None if result.curves is None else curves_to_json(result.curves)
    return data


def validation_table(curves: TrainingCurves, rows: int = 12):
    """The validation curve (--val-every) as a table of at most `rows` points, the first and the
    last always among them; every point is in --json and the model directory's curves.json."""
    from rich.table import Table

    from memseg.curves import VALIDATION_LABEL

    count = len(curves.val_steps)
    shown = sorted({round(i * (count - 1) / (rows - 1)) for i in range(rows)}) if count > rows else range(count)
    table = Table(
        title=f"{VALIDATION_LABEL} (held-out training images, never a test score)",
        caption=f"{len(shown)} of {count} points; all of them in --json and curves.json",
    )
    table.add_column("step", justify="right")
    for name in ("image AUROC (%)", "pixel AUROC (%)", "loss"):
        table.add_column(name, justify="right")
    for i in shown:
        image, pixel, loss = (curves.validation[k][i] for k in ("image_auroc", "pixel_auroc", "loss"))
        table.add_row(
            str(curves.val_steps[i]),
            *("n/a" if math.isnan(v) else f"{100 * v:.2f}" for v in (image, pixel)),
            "n/a" if math.isnan(loss) else f"{loss:.4f}",
        )
    return table


def metrics_table(result: JobResult):
    from rich.table import Table

    table = Table(title=f"MemSeg {result.config.category} / {result.config.ablation} / seed {result.config.seed}")
    table.add_column("metric")
    table.add_column("value (%)", justify="right")
    for key, label in METRICS.items():
        value = result.metrics.get(key, math.nan)
        oracle = " (oracle: best threshold on the test set)" if key == "pixel_f1" else ""
        table.add_row(label + oracle, "n/a" if math.isnan(value) else f"{100 * value:.2f}")
    if result.thresholds is not None:  # fixed on defect-free images before the test set
        for key, label in THRESHOLDED.items():
            if key not in METRICS:
                value = result.metrics.get(key, math.nan)
                table.add_row(f"{label} at the calibrated threshold", "n/a" if math.isnan(value) else f"{100 * value:.2f}")
        table.caption = f"Thresholds: {result.thresholds.describe()}"
    t = result.timings
    table.add_row("train", f"{t['train_s']:.1f} s, {t['train_steps_per_s']:.2f} steps/s")
    table.add_row("inference", f"{t['infer_images_per_s']:.1f} images/s")
    return table


def encoder_distance_table(distances: tuple[EncoderDistance, ...], backbone: str, top: int = 5):
    """How far the checkpoint's encoder_segment conv1-layer3 is from the feature encoder's
    backbone: the `top` tensors furthest away, and a summary of weights and BN statistics."""
    from rich.table import Table

    weights = [d for d in distances if not d.is_statistic]
    stats = [d for d in distances if d.is_statistic]
    table = Table(
        title=f"encoder_segment conv1-layer3 vs the feature encoder ({backbone}): max |difference| per tensor",
        caption=(
            f"weights: {len(weights)} tensors, {sum(d.max_abs > 0 for d in weights)} differ, largest "
            f"{max((d.max_abs for d in weights), default=0.0):.3g}; BN running statistics: {len(stats)} tensors, "
            f"{sum(d.max_abs > 0 for d in stats)} differ, largest {max((d.max_abs for d in stats), default=0.0):.3g}"
        ),
    )
    table.add_column("tensor")
    table.add_column("kind")
    table.add_column("max |diff|", justify="right")
    for d in sorted(distances, key=lambda d: d.max_abs, reverse=True)[:top]:
        table.add_row(d.name, "BN statistic" if d.is_statistic else "weight", f"{d.max_abs:.4g}")
    return table


class _progress:
    """A rich progress bar fed by the job's Progress events (stderr, so --json stays clean)."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, TaskID, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[loss]}"),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self.update

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, event: Progress) -> None:
        if event.phase not in self.tasks:
            self.tasks[event.phase] = self.bar.add_task(event.phase, total=event.total, loss="")
        loss = "" if event.loss is None else f"loss {event.loss:.4f}"
        self.bar.update(self.tasks[event.phase], completed=event.step, total=event.total, loss=loss)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
