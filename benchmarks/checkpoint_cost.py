"""What a mid-job checkpoint costs: its size, and the time to take it (copy the state and serialise
it to safetensors, in the job's thread), to write it (the driver: temp file, fsync, rename) and
to resume from it. The state does not depend on the image size (the memory bank is rebuilt, not
saved), so the model is trained one step at 64 px to fill the optimizer's state.

    python benchmarks/checkpoint_cost.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from harness import checkpoints
from memseg import checkpoint as train_checkpoint
from memseg.checkpoint import TrainCheckpoint
from memseg.model import MemSeg
from memseg.train_step import lr_factor

T = TypeVar("T")


def _timed(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """The median seconds of `repeats` calls, and the last call's value."""
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = MemSeg(image_size=64, memory_size=30, backbone_weights="none")  # the full model, as the paper profile
    model.fill_memory(torch.rand(30, 3, 64, 64))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=3e-3, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, 500, 5000))
    model.train()
    logits = model(torch.rand(2, 3, 64, 64))
    logits.float().mean().backward()
    optimizer.step()
    scheduler.step()
    generators = {"sampler": torch.Generator().manual_seed(0), "simulation": torch.Generator().manual_seed(1)}

    def capture() -> TrainCheckpoint:
        return train_checkpoint.capture("bench", 1, model, optimizer, scheduler, generators, device, 1.0)

    capture_s, state = _timed(capture, args.repeats)
    serialise_s, blob = _timed(lambda: state.to_bytes(), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.safetensors"
        write_s = statistics.median(checkpoints.write(path, blob) for _ in range(args.repeats))
    load_s, loaded = _timed(lambda: TrainCheckpoint.from_bytes(blob), args.repeats)
    restore_s, _ = _timed(lambda: train_checkpoint.restore(loaded, model, optimizer, scheduler, generators, device), args.repeats)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {params / 1e6:.1f} M parameters, {sum(p.numel() for p in trainable) / 1e6:.1f} M trainable (AdamW state for those)"
    )
    print(f"checkpoint size: {len(blob) / 2**20:.1f} MiB ({len(state.tensors)} tensors)")
    print(f"take (copy state) {capture_s * 1000:.0f} ms + serialise {serialise_s * 1000:.0f} ms  [in the job, per checkpoint]")
    print(f"write (temp file, fsync, rename) {write_s * 1000:.0f} ms  [in the driver]")
    print(f"resume: parse {load_s * 1000:.0f} ms + restore {restore_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
