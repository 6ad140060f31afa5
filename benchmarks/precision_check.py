"""What bf16 autocast does to MemSeg against the official float32, measured on the CPU (which has
bf16 autocast): one smoke-profile model per category, trained in float32, then evaluated on the
same test images three ways, then the category trained again in bf16.

    OMP_NUM_THREADS=1 python benchmarks/precision_check.py [--categories carpet,bottle] [--seed 0]
                      [--threads 1] [--data /tmp/precision-data] [--out results/benchmarks/precision.json]

Table 1, one trained float32 model, inference only (the bank refilled in each way):
  fp32         float32 bank, float32 forward: the official arithmetic
  bf16         bank and forward under bf16 autocast: this code's bf16 (the bank filled as the features)
  bf16, fp32 bank  float32 bank, bf16 forward: what GPUs computed before revision 5
For each: the relative difference of the scaled DI and of the anomaly map from fp32's
(||x - x_fp32|| / ||x_fp32||, over all test images), the share of (image, level) pairs whose nearest
memory item differs from fp32's, and the test set's image and pixel AUROC.

Table 2: the category trained and evaluated in each precision (whole jobs, smoke profile).
The learning test's data (generated, 64 px, seed 0). Speed on a GPU: benchmarks/speed.py --precisions.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from memseg import job as job_module
from memseg.artefacts import load_model
from memseg.config import JobConfig
from memseg.data.synthetic import generate
from memseg.job import fill_memory, load_data, split_memory
from memseg.metrics import image_auroc, image_scores, pixel_auroc
from memseg.model import MemSeg, smooth
from memseg.precision import autocast, resolve_precision
from memseg.profiles import profile

CPU = torch.device("cpu")


def _config(category: str, seed: int, data: Path, precision: str, out: Path | None = None) -> JobConfig:
    values = profile("smoke") | {"category": category, "seed": seed, "data_root": str(data), "dataset": "synthetic"}
    return JobConfig.from_dict(values | {"precision": precision, "device": "cpu", "out_dir": str(out) if out else None})


@torch.no_grad()
def _inference(model: MemSeg, images: torch.Tensor, bf16_forward: bool, batch: int = 16) -> dict[str, Any]:
    """The scaled DI per level, the chosen memory items and the anomaly maps of uint8 `images`."""
    compute = resolve_precision("bf16" if bf16_forward else "fp32", "cpu")
    dis: list[list[torch.Tensor]] = [[], [], []]
    items: list[list[torch.Tensor]] = [[], [], []]
    maps = []
    for first in range(0, len(images), batch):
        x = images[first : first + batch].float() / 255
        with autocast(compute, "cpu"):
            _, raw = model.frozen_features(x)
            smoothed = [smooth(f) for f in raw]
            for level, (chosen, diff) in enumerate(zip(model.nearest_memory(smoothed), model.difference(smoothed))):
                items[level].append(chosen)
                dis[level].append(model.di_scale * diff.float())
            maps.append(model.anomaly_map(model(x)).float())
    return {
        "di": [torch.cat(d) for d in dis],
        "items": [torch.cat(i) for i in items],
        "maps": torch.cat(maps),
    }


def _relative(x: torch.Tensor, reference: torch.Tensor) -> float:
    return float((x.double() - reference.double()).norm() / reference.double().norm().clamp_min(1e-30))


def compare_inference(model_dir: Path) -> list[dict[str, Any]]:
    model, config = load_model(model_dir)
    data = load_data(config)
    memory_images, _ = split_memory(data.train_images, model.memory_size)
    assert data.test_masks is not None, "the generated data set has masks"
    ways = {"fp32": ("fp32", False), "bf16": ("bf16", True), "bf16, fp32 bank": ("fp32", True)}
    outputs = {}
    for name, (bank_precision, bf16_forward) in ways.items():
        fill_memory(model, memory_images, CPU, resolve_precision(bank_precision, "cpu"))
        outputs[name] = _inference(model, data.test_images, bf16_forward)
    reference = outputs["fp32"]
    rows = []
    for name, out in outputs.items():
        scores = image_scores(out["maps"], top_k=config.top_k)
        changed = sum(int((a != b).sum()) for a, b in zip(out["items"], reference["items"]))
        rows.append(
            {
                "way": name,
                "di_rel_diff": [_relative(d, r) for d, r in zip(out["di"], reference["di"])],
                "map_rel_diff": _relative(out["maps"], reference["maps"]),
                "map_max_abs_diff": float((out["maps"] - reference["maps"]).abs().max()),
                "items_changed": changed / (3 * len(data.test_images)),
                "image_auroc": image_auroc(scores, data.test_labels),
                "pixel_auroc": pixel_auroc(out["maps"], data.test_masks),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--categories", default="carpet,bottle")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the learning test's 1)")
    parser.add_argument("--data", type=Path, default=Path("/tmp/precision-data"))
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/precision.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    categories = args.categories.split(",")
    if not all((args.data / c).exists() for c in categories):
        generate(args.data, categories=tuple(categories), image_size=64, seed=0)
    console = Console(width=140)  # the DI column holds three numbers
    report: dict[str, Any] = {"threads": args.threads, "seed": args.seed, "torch": torch.__version__, "categories": {}}
    for category in categories:
        trained: dict[str, dict[str, float]] = {}
        model_dirs: dict[str, str] = {}
        for precision in ("fp32", "bf16"):
            start = time.perf_counter()
            result = job_module.run(_config(category, args.seed, args.data, precision, args.data / "models" / precision))
            trained[precision] = {**result.metrics, "wall_s": time.perf_counter() - start, **result.timings}
            model_dirs[precision] = str(args.data / "models" / precision / result.job_id)
        rows = compare_inference(Path(model_dirs["fp32"]))
        report["categories"][category] = {"inference": rows, "trained": trained, "model_dirs": model_dirs}

        table = Table(title=f"{category}: one float32-trained smoke model, the same test images")
        for column in ("bank / forward", "DI rel. diff (L1, L2, L3)", "map rel. diff", "map max |diff|", "items changed", "image AUROC", "pixel AUROC"):  # fmt: skip
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(
                row["way"],
                ", ".join(f"{d:.2e}" for d in row["di_rel_diff"]),
                f"{row['map_rel_diff']:.2e}",
                f"{row['map_max_abs_diff']:.2e}",
                f"{100 * row['items_changed']:.1f}%",
                f"{100 * row['image_auroc']:.1f}",
                f"{100 * row['pixel_auroc']:.1f}",
            )
        console.print(table)
        table = Table(
            title=f"{category}: trained and evaluated in each precision (smoke, seed {args.seed}, {args.threads} thread(s))"
        )
        for column in ("precision", "image AUROC", "pixel AUROC", "pixel F1-max", "AUPRO", "train s", "train steps/s"):
            table.add_column(column, justify="right")
        for precision, m in trained.items():
            table.add_row(
                precision,
                *(f"{100 * m[k]:.1f}" for k in ("image_auroc", "pixel_auroc", "pixel_f1", "pixel_aupro")),
                f"{m['train_s']:.1f}",
                f"{m['train_steps_per_s']:.2f}",
            )
        console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
