"""The extra cost per training step of the official two encoders (ablation full) over one
always-eval encoder (ablation frozen_bn): the segment encoder runs conv1-layer3 a second time,
with train-mode BatchNorms.

    python benchmarks/encoder_cost.py [--sizes 64,128] [--steps 3] [--rounds 3] [--device cpu]

Each figure is a whole training step as a job runs it (`memseg.job.train_model`: simulation, forward,
loss, backward, optimizer), batch 8, random images and backbone. The two models alternate round
by round and each keeps its fastest round, so that load from other processes on a shared machine
shows up as little as possible. The last column times the segment encoder's conv1-layer3 forward
alone (train mode, no graph), the part the second encoder adds to a step.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from memseg.build import build_model, build_simulator
from memseg.config import JobConfig
from memseg.job import resolve_device, train_model
from memseg.procedural import procedural_textures
from memseg.profiles import profile

ABLATIONS = ("frozen_bn", "full")


def step_seconds(size: int, steps: int, rounds: int, device: torch.device) -> dict[str, float]:
    """The fastest mean seconds per step over `rounds` rounds of `steps` steps, per ablation, and
    the fastest segment-encoder forward ("segment_forward")."""
    images = torch.randint(0, 256, (24, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    bank = procedural_textures(8, size, seed=0).to(device)
    jobs = {}
    for ablation in ABLATIONS:
        config = JobConfig.from_dict(
            profile("paper")
            | {"category": "bottle", "ablation": ablation, "image_size": size, "batch_size": 8, "steps": steps}
            | {"memory_size": 8, "backbone_weights": "none", "log_every": 10**6, "device": str(device)}
        )
        torch.manual_seed(0)
        model = build_model(config).to(device)
        with torch.no_grad():
            model.fill_memory(images[:8].to(device).float() / 255)
        simulator = build_simulator(config, bank)
        train_model(model, simulator, images[8:], config.replace(steps=1), device, lambda _: None)  # warm-up
        jobs[ablation] = (model, simulator, config)
    best = {ablation: float("inf") for ablation in (*ABLATIONS, "segment_forward")}
    two_encoders = jobs["full"][0].train()
    batch = images[:8].to(device).float() / 255
    for _ in range(rounds):
        for ablation, (model, simulator, config) in jobs.items():
            outcome = train_model(model, simulator, images[8:], config, device, lambda _: None)
            best[ablation] = min(best[ablation], 1.0 / outcome.steps_per_s)
        with torch.no_grad():  # what the second encoder adds, timed alone: its conv1-layer3, train-mode BNs
            for _ in range(steps):
                start = time.perf_counter()
                two_encoders.segment_features(batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                best["segment_forward"] = min(best["segment_forward"], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    table = Table(title=f"Training step, batch 8, {device.type}, {torch.get_num_threads()} thread(s): two encoders vs one")
    for column in ("image size", "frozen_bn (ms/step)", "full (ms/step)", "extra", "full / frozen_bn", "segment encoder alone"):
        table.add_column(column, justify="right")
    for size in (int(s) for s in args.sizes.split(",")):
        seconds = step_seconds(size, args.steps, args.rounds, device)
        one, two = seconds["frozen_bn"], seconds["full"]
        alone = f"{1e3 * seconds['segment_forward']:.0f} ms"
        table.add_row(
            f"{size} px", f"{1e3 * one:.0f}", f"{1e3 * two:.0f}", f"{1e3 * (two - one):+.0f} ms", f"{two / one:.3f}", alone
        )
    Console().print(table)


if __name__ == "__main__":
    main()
