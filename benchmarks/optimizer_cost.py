"""What one optimizer step costs on the CPU over MemSeg's trainable parameters, per implementation
(measured for revision 4's fused optimizers): the per-parameter loop (`foreach=False`), the multi-tensor one (`foreach=True`)
and the fused kernel (`fused=True`), for AdamW and SGD with momentum. It also prints how far each
lands from the loop after `--steps` steps on the same gradients, so the speed-up is shown to keep
the numbers.

    python benchmarks/optimizer_cost.py [--threads 1] [--steps 20] [--rounds 5]

The parameters are the trainable ones of `memseg.build.build_model(profile paper)` (segment
encoder layer4, MSFF, decoder); gradients are fixed random tensors. Each figure is the fastest
mean over `--rounds` rounds, so load from other processes shows up as little as possible.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from memseg.build import build_model
from memseg.config import JobConfig
from memseg.profiles import profile

KINDS: dict[str, dict[str, Any]] = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def trainable_shapes() -> list[torch.Size]:
    config = JobConfig.from_dict(profile("paper") | {"category": "bottle", "backbone_weights": "none"})
    model = build_model(config)
    return [p.shape for p in model.parameters() if p.requires_grad]


def make(name: str, params: list[torch.nn.Parameter], kind: str) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=7e-3, weight_decay=5e-4, **KINDS[kind])
    return torch.optim.SGD(params, lr=0.04, momentum=0.9, weight_decay=3e-5, **KINDS[kind])


def measure(name: str, kind: str, shapes: list[torch.Size], steps: int, rounds: int) -> tuple[float, list[torch.Tensor]]:
    """Fastest mean ms per step, and the parameters after the first round."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    grads = [torch.randn(s, generator=gen) * 1e-2 for s in shapes]
    for p, g in zip(params, grads):
        p.grad = g
    optimizer = make(name, params, kind)
    best = float("inf")
    after: list[torch.Tensor] = []
    for round_ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.step()
        best = min(best, (time.perf_counter() - start) / steps * 1e3)
        if round_ == 0:
            after = [p.detach().clone() for p in params]
    return best, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = trainable_shapes()
    count = sum(s.numel() for s in shapes)
    table = Table(title=f"optimizer step on CPU, {count / 1e6:.1f} M trainable parameters, {args.threads} thread(s)")
    for column in ("optimizer", "implementation", "ms / step", "max |Δ| vs loop after first round", "max rel Δ"):
        table.add_column(column)
    for name in ("adamw", "sgd"):
        reference: list[torch.Tensor] = []
        for kind in KINDS:
            ms, after = measure(name, kind, shapes, args.steps, args.rounds)
            if kind == "loop":
                reference = after
            diff = max(float((a - r).abs().max()) for a, r in zip(after, reference))
            rel = max(float(((a - r).abs() / r.abs().clamp_min(1e-12)).max()) for a, r in zip(after, reference))
            table.add_row(name, kind, f"{ms:.1f}", f"{diff:.2e}", f"{rel:.2e}")
    Console().print(table)


if __name__ == "__main__":
    main()
