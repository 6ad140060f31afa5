"""Counts the aten ops dispatched by one anomaly-simulation call and by its parts, and by one
MemSeg forward + backward for comparison: on a launch-bound GPU each kernel costs ~5-15 us, so the
count is a device-independent proxy for the simulation's GPU time.

Usage: python benchmarks/sim_ops.py [--size 256] [--batch 8] [--category bottle]
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from memseg.model import MemSeg
from memseg.perlin import perlin_2d
from memseg.procedural import procedural_textures
from memseg.simulate import (
    AnomalySimulator,
    SimulationConfig,
    foreground_mask,
    shuffle_grid,
    structure_augment,
    texture_source,
)

# Ops that only make a view or an empty buffer: no kernel runs for them on a GPU.
_NO_KERNEL = {"empty", "empty_strided", "empty_like", "detach", "alias", "lift_fresh"}


class OpCounter(TorchDispatchMode):
    """Counts every aten op dispatched while active; `kernels` leaves out views and allocations."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.kernels = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if not (func.is_view or name in _NO_KERNEL):
            self.kernels += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def count(fn) -> OpCounter:
    with OpCounter() as counter:
        fn()
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--model", action=argparse.BooleanOptionalAction, default=True, help="also count the model")
    parser.add_argument("--top", type=int, default=0, help="list the N most frequent ops of the whole call")
    args = parser.parse_args()
    size, batch = args.size, args.batch

    gen = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=gen)
    bank = procedural_textures(16, size, seed=0)
    simulator = AnomalySimulator(SimulationConfig(args.category, size), bank)
    simulator(images, torch.Generator().manual_seed(1))  # warm-up (lazy imports, caches)
    half = simulator.anomaly_count(batch)
    res = torch.full((2 * half,), 8)

    parts = {
        f"simulator(images) [B={batch}]": lambda: simulator(images, torch.Generator().manual_seed(1)),
        f"perlin_2d [B={2 * half}]": lambda: perlin_2d(size, res, res, 32, torch.Generator().manual_seed(1)),
        f"foreground_mask [B={half}]": lambda: foreground_mask(images[:half], args.category),
        f"structure_augment [B={half}]": lambda: structure_augment(images[:half], torch.Generator().manual_seed(1)),
        f"shuffle_grid [B={half}]": lambda: shuffle_grid(images[:half], 8, torch.Generator().manual_seed(1)),
        f"texture_source [B={half}]": lambda: texture_source(bank, half, torch.Generator().manual_seed(1)),
    }
    if args.model:
        model = MemSeg(image_size=images.shape[-1], memory_size=4)
        with torch.no_grad():
            model.fill_memory(images[:4])
        model.train()

        def forward_backward() -> None:
            model(images).float().mean().backward()

        parts[f"MemSeg forward+backward [B={batch}]"] = forward_backward

    print(f"{'part':<40} {'ops':>6} {'kernels':>8}")
    counters = {name: count(fn) for name, fn in parts.items()}
    for name, counter in counters.items():
        print(f"{name:<40} {counter.total:>6} {counter.kernels:>8}")
    if args.top:
        print()
        for op, n in counters[next(iter(parts))].ops.most_common(args.top):
            print(f"  {op:<30} {n}")


if __name__ == "__main__":
    main()
