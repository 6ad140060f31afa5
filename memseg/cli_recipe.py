"""The recipe flags, declared once for both command lines (`python -m memseg train` and
`python -m harness run`): each sets one JobConfig field, and `recipe_overrides` reads them back.
A flag left out means "the profile's (or the category's) value", so every default is None.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from memseg.cli_errors import image_size, positive_float, positive_int
from memseg.config import EVAL_RESOLUTIONS
from memseg.precision import PRECISIONS

BACKBONE_NAMES = ("imagenet", "none")  # --backbone-weights values that are not paths


def add_recipe_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add every recipe flag to `parser` (or an argument group of it)."""
    parser.add_argument("--steps", type=positive_int, help="training steps (default: the profile's)")
    parser.add_argument("--image-size", type=image_size, help="image size in pixels, a multiple of 32")
    parser.add_argument("--batch-size", type=positive_int, help="images per training step (default: the profile's)")
    parser.add_argument(
        "--lr", type=positive_float, help="base learning rate (default: the profile's; docs/model.md: the official screw comment)"
    )
    parser.add_argument("--backbone-weights", help="imagenet | none | PATH to a ResNet18 state dict")
    parser.add_argument("--texture-dir", help="DTD-style folder of anomaly-source textures (default: procedural)")
    parser.add_argument("--memory-size", type=positive_int, help="memory bank size (default: per category, memseg/categories.py)")
    parser.add_argument("--di-scale", type=positive_float, help="DI multiplier (default: per category)")
    parser.add_argument(
        "--feature-scale", type=positive_float, help="multiplier of the features beside DI (default: per category)"
    )
    parser.add_argument(
        "--foreground-mask", choices=("on", "off"), help="restrict anomalies to the object (default: per category)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="what the forward passes compute in: fp32 (the official code's float32; paper, tootouch), tf32, "
        "bf16 (autocast), auto (bf16 on a GPU, float32 on the CPU; smoke, tiny). Default: the profile's",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile each job's model (pays off over thousands of GPU steps)",
    )
    parser.add_argument(
        "--val-every",
        type=positive_int,
        metavar="N",
        help="every N steps, score held-out training images with simulated anomalies: a validation curve, never a "
        "test score, never used to pick the model (holds --val-images images out of training; docs/watching.md)",
    )
    parser.add_argument(
        "--val-images",
        type=positive_int,
        metavar="K",
        help="how many normal training images --val-every holds out (default 8: the last K in sorted order)",
    )
    parser.add_argument(
        "--calibrate-images",
        type=positive_int,
        metavar="K",
        help="hold the last K normal training images out of training and fix the image and pixel thresholds on them "
        "(mean + 3 std of their scores) before the test set is read; MVTec AD 2 calibrates on its validation/ without it",
    )
    parser.add_argument(
        "--save-maps",
        action="store_true",
        default=None,
        help="keep each job's test anomaly maps (model resolution, about 256 KB per image at 256 px) for "
        "`harness export --to mvtec-maps`; not part of the job id",
    )
    parser.add_argument(
        "--predict-private",
        action="store_true",
        default=None,
        help="MVTec AD 2: also predict test_private/ and test_private_mixed/ (maps only, no metric: only MVTec's "
        "server scores them) for `harness export --to mvtec-ad2-submission`; implies --save-maps",
    )
    parser.add_argument(
        "--eval-resolution",
        choices=EVAL_RESOLUTIONS,
        help="pixel metrics at the model's size (default) or at each mask's original size",
    )


def recipe_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The JobConfig fields the recipe flags give, only those given. Paths are made absolute: a
    job may run in another directory (a Ray actor does); the job id names them by what they are."""
    weights = args.backbone_weights
    pairs = {
        "steps": args.steps,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "backbone_weights": str(Path(weights).resolve()) if weights and weights not in BACKBONE_NAMES else weights,
        "texture_dir": str(Path(args.texture_dir).resolve()) if args.texture_dir else None,
        "memory_size": args.memory_size,
        "di_scale": args.di_scale,
        "feature_scale": args.feature_scale,
        "foreground_mask": None if args.foreground_mask is None else args.foreground_mask == "on",
        "precision": args.precision,
        "compile": args.compile,
        "eval_resolution": args.eval_resolution,
        "val_every": args.val_every,
        "val_images": args.val_images,
        "calibrate_images": args.calibrate_images,
        "save_maps": args.save_maps or args.predict_private,
        "predict_private": args.predict_private,
    }
    return {k: v for k, v in pairs.items() if v is not None}
