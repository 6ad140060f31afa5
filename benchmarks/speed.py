"""Throughput of one MemSeg job on the current device, and what each speed measure buys.

    python benchmarks/speed.py [--sizes 64,128,256] [--batch-sizes 1,8,32] [--steps 3] [--device auto]
                               [--precisions fp32,bf16] [--out results/benchmarks/speed.json] [--skip-before-after]

Table 1 (throughput): anomaly simulation (images/s), a full training step (steps/s and
images/s: simulation + forward + loss + backward + AdamW) and inference (images/s), per image
size, batch size and precision (fp32: the paper profile's, the official code's float32; bf16: the
`bf16` recipe variant's autocast), measured with the job's own functions (`memseg.job.train_model`,
`predict_maps`, `measure_simulation`) so the figures are those a job records.

Table 2 (before / after, one run, as ratios because machines here are noisy):
  - data:       decoding PNG files for every batch (a classic DataLoader) vs indexing the uint8
                tensors decoded once at load
  - simulation: one image at a time vs the whole batch at once
  - memory:     nearest memory item by a Python loop over the bank vs one cdist
  - sim/train:  simulation images/s over training images/s at the largest size (target >= 4)
Random images stand in for data: throughput does not depend on content.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from memseg.build import build_model, build_simulator
from memseg.config import JobConfig
from memseg.job import fill_memory, measure_simulation, predict_maps, resolve_device, train_model
from memseg.model import MemSeg
from memseg.precision import PRECISIONS, resolve_precision
from memseg.procedural import procedural_textures
from memseg.profiles import profile
from memseg.simulate import AnomalySimulator


def _config(size: int, batch: int, steps: int, device: str, precision: str = "fp32") -> JobConfig:
    values = profile("paper") | {
        "precision": precision,
        "category": "bottle",
        "image_size": size,
        "batch_size": batch,
        "eval_batch_size": batch,
        "steps": steps,
        "memory_size": 8,
        "backbone_weights": "none",
        "log_every": 10**6,
        "device": device,
    }
    return JobConfig.from_dict(values)


def _setup(config: JobConfig, device: torch.device) -> tuple[MemSeg, AnomalySimulator, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(
        0, 256, (max(64, 2 * config.batch_size), 3, config.image_size, config.image_size), dtype=torch.uint8, generator=generator
    )
    model = build_model(config).to(device)
    fill_memory(model, images[: model.memory_size], device, resolve_precision(config.precision, device.type))
    bank = procedural_textures(16, config.image_size, seed=0).to(device)
    return model, build_simulator(config, bank), images


def throughput(size: int, batch: int, steps: int, device: torch.device, precision: str = "fp32") -> dict[str, Any]:
    config = _config(size, batch, steps, str(device), precision)
    model, simulator, images = _setup(config, device)
    sim = measure_simulation(simulator, images, config, device, batches=max(2, steps))
    train_model(model, simulator, images, config.replace(steps=1), device, lambda _: None)  # warm-up
    train = train_model(model, simulator, images, config, device, lambda _: None)
    test_images = images[: max(batch, 2 * batch if batch < 8 else batch)]
    predict_maps(model, test_images[:batch], config, device, lambda _: None)  # warm-up
    _, infer, _ = predict_maps(model, test_images, config, device, lambda _: None)
    return {
        "image_size": size,
        "batch_size": batch,
        "precision": resolve_precision(precision, device.type).name,
        "sim_images_per_s": sim,
        "train_steps_per_s": train.steps_per_s,
        "train_images_per_s": train.steps_per_s * batch,
        "infer_images_per_s": infer,
        "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan"),
    }


def _timed(fn, repeats: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def before_after(size: int, batch: int, device: torch.device) -> list[dict[str, float | str]]:
    """Each speed measure against the straightforward way, on the same data, in one run."""
    config = _config(size, batch, 1, str(device))
    model, simulator, images = _setup(config, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows: list[dict[str, Any]] = []

    with tempfile.TemporaryDirectory() as folder:
        # MVTec AD images are 700-1024 px PNGs: a loader that decodes them for every batch also
        # resizes them every time. Smooth 1024 px stand-ins keep the PNGs realistically sized.
        originals = torch.nn.functional.interpolate(images[:batch].float(), size=1024, mode="bilinear")
        paths = []
        for i, image in enumerate(originals.round().to(torch.uint8)):
            path = Path(folder) / f"{i:03d}.png"
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
            paths.append(path)

        def decode_every_batch() -> torch.Tensor:
            arrays = [
                torch.from_numpy(np.array(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)))
                for p in paths
            ]
            batch_images = torch.stack(arrays).permute(0, 3, 1, 2).to(device)
            sync()
            return batch_images

        index = torch.arange(batch, device=device)
        on_device = images.to(device)
        before = _timed(decode_every_batch)
        after = _timed(lambda: (on_device[index], sync()))
        rows.append({"measure": "data: decode + resize PNG per batch -> uint8 in memory", "before_s": before, "after_s": after})

    float_images = images[:batch].to(device).float() / 255
    generator = torch.Generator(device=device).manual_seed(0)
    before = _timed(lambda: ([simulator(float_images[i : i + 1], generator) for i in range(batch)], sync()))
    after = _timed(lambda: (simulator(float_images, generator), sync()))
    rows.append({"measure": "simulation: per image -> batched", "before_s": before, "after_s": after})

    with torch.no_grad():
        _, levels = model.frozen_features(float_images)
        from memseg.model import smooth

        levels = [smooth(f) for f in levels]

        def loop_over_bank() -> list[torch.Tensor]:
            distances = [torch.zeros(batch, model.memory_size, device=device) for _ in levels]
            for n in range(model.memory_size):
                for distance, feats, bank in zip(distances, levels, model.memory):
                    distance[:, n] = (feats - bank[n]).abs().flatten(1).sum(dim=1)
            sync()
            return [distance.argmin(dim=1) for distance in distances]

        before = _timed(loop_over_bank)
        after = _timed(lambda: (model.nearest_memory(levels), sync()))
        agree = all(torch.equal(a, b) for a, b in zip(loop_over_bank(), model.nearest_memory(levels)))
        assert agree, "the two matchings disagree"
    rows.append({"measure": "memory matching: loop over bank -> one cdist", "before_s": before, "after_s": after})
    for row in rows:
        row["speed_up"] = row["before_s"] / row["after_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per cell (after one warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--precisions", default="fp32,bf16", help=f"recipe precisions to time, of {', '.join(PRECISIONS)}")
    parser.add_argument("--skip-before-after", action="store_true")
    parser.add_argument("--out", default="results/benchmarks/speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batch_sizes.split(",")]
    console = Console()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    console.print(f"device: {name}; torch {torch.__version__}")

    grid = []
    table = Table(title=f"MemSeg throughput on {name}")
    for column in (
        "px",
        "batch",
        "precision",
        "simulation img/s",
        "train steps/s",
        "train img/s",
        "inference img/s",
        "sim / train",
        "peak MB",
    ):
        table.add_column(column, justify="right")
    cells = [(size, batch, precision) for size in sizes for batch in batches for precision in args.precisions.split(",")]
    for size, batch, precision in cells:
        row = throughput(size, batch, args.steps, device, precision)
        grid.append(row)
        table.add_row(
            str(size),
            str(batch),
            str(row["precision"]),
            f"{row['sim_images_per_s']:.1f}",
            f"{row['train_steps_per_s']:.3f}",
            f"{row['train_images_per_s']:.2f}",
            f"{row['infer_images_per_s']:.1f}",
            f"{row['sim_images_per_s'] / row['train_images_per_s']:.1f}x",
            f"{row['peak_mem_mb']:.0f}",
        )
    console.print(table)

    comparisons: list[dict[str, Any]] = []
    if not args.skip_before_after:
        size, batch = max(sizes), 8 if 8 in batches else max(batches)
        comparisons = before_after(size, batch, device)
        ratio_table = Table(title=f"Before / after at {size} px, batch {batch}")
        for column in ("measure", "before (s)", "after (s)", "speed-up"):
            ratio_table.add_column(column, justify="right")
        for row_ in comparisons:
            ratio_table.add_row(
                str(row_["measure"]), f"{row_['before_s']:.4f}", f"{row_['after_s']:.4f}", f"{row_['speed_up']:.1f}x"
            )
        console.print(ratio_table)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "device": name,
                "torch": torch.__version__,
                "host": platform.node(),
                "throughput": grid,
                "before_after": comparisons,
            },
            indent=1,
        )
    )
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
