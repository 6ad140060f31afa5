"""One MemSeg training step (sample a batch, simulate anomalies, forward, loss, backward, SGD or AdamW),
the optimizer and the learning-rate schedule it steps (`make_optimizer`, `make_scheduler`: one place),
and the ways to run it: eagerly, captured once in a CUDA graph and replayed, or with the model
under torch.compile.

On a GPU the eager step is bound by kernel launches (~30 ms at every image size on an H200,
docs/gpu/), so replaying the whole step as one CUDA graph is the speed-up to expect. The same
`train_step` function runs in every mode; only what surrounds it differs. The graph path has not
been measured on a GPU yet (docs/speed.md, "Captured step and throughput benchmark").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from memseg.config import JobConfig, check_optimizer, check_step_mode
from memseg.loss import LossSettings
from memseg.model import at_least_float32
from memseg.precision import ComputePrecision, autocast
from memseg.simulate import AnomalySimulator

STEP_PATHS: tuple[str, ...] = ("eager", "graph", "compile")  # what a result row's step_path may say
LOSS_PARTS: tuple[str, ...] = ("loss", "loss_l1", "loss_focal")  # what a step returns, in this order
GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture (PyTorch's whole-network recipe)


@dataclass(frozen=True)
class StepPath:
    """Which way the steps of a job ran (`name`, one of STEP_PATHS) and, when that is not the way
    that was asked for, why (`fallback`: the capture error, or "CUDA graphs need a CUDA device")."""

    name: str
    fallback: str = ""


def plan_step_path(mode: str, compile_model: bool, device: torch.device) -> StepPath:
    """The path to try before any step runs. `compile_model` (the recipe's `compile` flag, which
    predates step_mode) means compile whatever the mode. auto and graph try a capture on CUDA
    (it may still fail and fall back, see `capture_step`); off CUDA they run eagerly, and an
    explicit graph request says why."""
    check_step_mode(mode)
    if compile_model or mode == "compile":
        ignored = (
            f"step_mode {mode} ignored: compile=True (the recipe's torch.compile) runs compiled"
            if mode in ("eager", "graph")
            else ""
        )
        return StepPath("compile", ignored)
    if mode == "eager":
        return StepPath("eager")
    if device.type != "cuda":
        return StepPath("eager", "" if mode == "auto" else f"CUDA graphs need a CUDA device; this job runs on {device.type}")
    return StepPath("graph")


@dataclass(frozen=True)
class StepParts:
    """Everything one step reads and writes. In graph mode these are the graph's static buffers:
    the tensors must stay the same objects for the whole run (updated in place only)."""

    net: Callable[[torch.Tensor], torch.Tensor]  # the model, or torch.compile of it
    simulator: AnomalySimulator
    optimizer: torch.optim.Optimizer
    images: torch.Tensor  # (N, 3, S, S) uint8 training images on the device
    sampler: torch.Generator  # batch indices
    sim_generator: torch.Generator  # anomaly simulation
    batch_size: int
    precision: ComputePrecision  # the forward pass's autocast (memseg.precision)
    loss: LossSettings
    step: torch.Tensor  # () long on the device: the index of the step about to run
    first_bad_step: torch.Tensor  # () long on the device: first step with a non-finite loss, -1 if none


def train_step(parts: StepParts) -> torch.Tensor:
    """One step; returns its losses (3,) on the device: the total, its L1 part and its focal part
    (LOSS_PARTS), read on the host only at the logging interval. No host sync anywhere, so the whole step
    can be captured in a CUDA graph: the step counter and the first non-finite step live on the
    device and are updated in place. Gradients must be None on entry (the caller zeroes them with
    set_to_none=True, once before capture in graph mode): backward then writes, not accumulates."""
    device = parts.images.device
    # Batch indices are drawn on the training device: a host-made index would cost a host-to-device
    # copy, and so a synchronisation, every step.
    index = torch.randint(len(parts.images), (parts.batch_size,), generator=parts.sampler, device=device)
    batch = to_float(parts.images[index])
    inputs, masks = parts.simulator(batch, parts.sim_generator)
    # No autocast weight cache: a graph must not keep casts from the capture (PyTorch's CUDA graph
    # notes); the casts themselves are the same, so eager numbers do not change.
    with autocast(parts.precision, device.type, cache_enabled=False):
        logits = parts.net(inputs)
    loss, loss_parts = parts.loss(at_least_float32(logits), masks)
    first_bad = ~torch.isfinite(loss) & (parts.first_bad_step < 0)
    parts.first_bad_step.copy_(torch.where(first_bad, parts.step, parts.first_bad_step))
    loss.backward()
    parts.optimizer.step()
    parts.step.add_(1)
    return torch.stack((loss.detach(), loss_parts["l1"].detach(), loss_parts["focal"].detach()))


def make_optimizer(
    trainable: list[nn.Parameter],
    name: str,
    lr: float,
    weight_decay: float,
    device: torch.device,
    path: StepPath,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """SGD (with `momentum`) or AdamW, as the recipe's `optimizer` says, fused on every device: on the
    CPU the fused kernel is 2-4x faster than the per-parameter loop over MemSeg's 18.2 M trainable
    parameters (`benchmarks/optimizer_cost.py`); fused SGD gives the loop's numbers bit for bit,
    fused AdamW differs in the last bits (its update is one kernel, not a chain of ops). For a graph the learning rate lives in a device tensor (the schedule
    fills it in place between replays) and no step reads a host value: AdamW is capturable (its
    step count on the device); SGD has no step count and no `capturable` flag, and its fused CUDA
    kernel takes the lr as a tensor (`_fused_sgd_.tensor_lr`), so a fused SGD with a tensor lr
    needs nothing else (its momentum buffers exist from the eager warm-up steps before capture)."""
    check_optimizer(name)
    graph = path.name == "graph"
    step_lr: float | torch.Tensor = torch.tensor(lr, device=device) if graph else lr
    optimizer: torch.optim.Optimizer
    if name == "sgd":
        optimizer = torch.optim.SGD(trainable, lr=step_lr, momentum=momentum, weight_decay=weight_decay, fused=True)
    elif graph:
        optimizer = torch.optim.AdamW(trainable, lr=step_lr, weight_decay=weight_decay, fused=True, capturable=True)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay, fused=True)
    if graph:
        hold_lr_in_tensor(optimizer, lr)
    return optimizer


def fit_restored_groups(optimizer: torch.optim.Optimizer, base_lr: float, path: StepPath) -> None:
    """After a checkpoint restore (whose param groups were saved by whichever path wrote it), make
    the groups what `make_optimizer` gives this path: for a graph, capturable (AdamW) with the lr
    in a device tensor; otherwise not capturable, the lr a float. Fused on every path, whatever the
    checkpoint's writer ran (before revision 4 the CPU ran the unfused loop)."""
    for group in optimizer.param_groups:
        group["fused"] = True
        if "capturable" in optimizer.defaults:  # AdamW; SGD has no such flag
            group["capturable"] = path.name == "graph"
        if path.name != "graph":
            group["lr"] = float(group["lr"])
    if path.name == "graph":
        hold_lr_in_tensor(optimizer, base_lr)


def hold_lr_in_tensor(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """Keep each group's lr a device tensor (a checkpoint restore hands back a float) and its
    schedule base a plain float: LambdaLR then computes lr = base x factor on the host and fills
    the tensor in place, one small copy per step and no host sync (a tensor base would need .item())."""
    for group in optimizer.param_groups:
        lr = group["lr"]
        if not isinstance(lr, torch.Tensor):
            group["lr"] = torch.tensor(float(lr), device=group["params"][0].device)
        group["initial_lr"] = base_lr


def capture_step(parts: StepParts) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """Capture one `train_step` in a CUDA graph: (graph, its static loss tensor). Each replay runs
    a whole step. The caller has run GRAPH_WARMUP_STEPS eager steps first (on a side stream, see
    `side_stream_steps`) so that the optimizer state and cuDNN plans exist before capture.

    The two custom generators are registered with the graph, so every replay advances their
    Philox offsets: each replay draws fresh batch indices, masks and augmentations (without the
    registration a replay would repeat the captured draws, or the capture would fail)."""
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(parts.sampler)
    graph.register_generator_state(parts.sim_generator)
    parts.optimizer.zero_grad(set_to_none=True)  # gradients are allocated inside the graph's pool
    with torch.cuda.graph(graph):
        loss = train_step(parts)
    return graph, loss


class StepRunner:
    """Runs the steps of one job the planned way and keeps what that needs between steps (the
    graph, its loss buffer, the side stream). Graph mode: GRAPH_WARMUP_STEPS real, eager training
    steps on a side stream, then one capture, then a replay per step. If the capture raises, the
    error goes into `path.fallback` and the remaining steps run eagerly: a capture problem never
    fails a job. `path` says, after the run, which way the steps ran."""

    def __init__(self, parts: StepParts, path: StepPath) -> None:
        self.parts, self.path = parts, path
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_loss: torch.Tensor | None = None
        self._warm_steps = 0
        device = parts.images.device
        self._side_stream = torch.cuda.Stream(device) if path.name == "graph" else None

    def __call__(self) -> torch.Tensor:
        """Run the next step; its losses (3,) as `train_step` returns them, on the device (in graph
        mode the graph's buffer, overwritten by the next replay)."""
        if self._graph is not None and self._graph_loss is not None:
            self._graph.replay()
            return self._graph_loss
        if self.path.name != "graph":
            self.parts.optimizer.zero_grad(set_to_none=True)
            return train_step(self.parts)
        if self._warm_steps < GRAPH_WARMUP_STEPS:
            self._warm_steps += 1
            return self._side_stream_step()
        try:
            self._graph, self._graph_loss = capture_step(self.parts)
        except RuntimeError as err:  # recorded in the result row, never raised: eager still trains
            self.path = StepPath("eager", f"CUDA graph capture failed, ran eager: {type(err).__name__}: {err}"[:500])
            torch.cuda.synchronize()
            return self()
        return self()

    def _side_stream_step(self) -> torch.Tensor:
        assert self._side_stream is not None  # made in __init__ for the graph path
        current = torch.cuda.current_stream()
        self._side_stream.wait_stream(current)  # after the schedule's in-place lr update
        with torch.cuda.stream(self._side_stream):
            self.parts.optimizer.zero_grad(set_to_none=True)
            loss = train_step(self.parts)
        current.wait_stream(self._side_stream)
        return loss

    def close(self) -> None:
        """Drop the graph and the gradients (its memory pool goes with them) before evaluation. A
        graph run too short to reach its capture ran eagerly, and `path` says so."""
        if self.path.name == "graph" and self._graph is None:
            self.path = StepPath(
                "eager", f"{self._warm_steps} step(s): a graph is captured after {GRAPH_WARMUP_STEPS} warm-up steps"
            )
        self._graph, self._graph_loss = None, None
        self.parts.optimizer.zero_grad(set_to_none=True)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float in [0, 1] (a new tensor)."""
    return images.float().div_(255.0)


def make_scheduler(optimizer: torch.optim.Optimizer, config: JobConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """The recipe's schedule, stepped once after every training step: step s runs at
    lr x factor(s), factor = `cosine_restart_factor` (period config.steps) or `lr_factor`."""
    if config.schedule == "cosine_restart":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_restart_factor(step, config.steps))
    warmup = max(1, round(config.warmup_fraction * config.steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup, config.steps))


def cosine_restart_factor(step: int, period: int) -> float:
    """The official schedule: CosineAnnealingWarmRestarts(optimizer, T_0=period) (eta_min 0,
    T_mult 1) driven as the CutPaste loop the official code descends from drives it, with
    `scheduler.step(step)` after step `step`. So step 0 and step 1 run at the base lr and step
    s >= 1 at base x (1 + cos(pi * ((s - 1) mod period) / period)) / 2: one cosine from the base
    lr to ~0 over `period` steps (restarting at the base lr at step period + 1, which a run of
    `period` steps never reaches). The official training loop itself was never published."""
    cycle = max(0, step - 1) % period
    return 0.5 * (1.0 + math.cos(math.pi * cycle / period))


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to the base learning rate over `warmup` steps, then cosine decay to 0
    (TooTouch/MemSeg's schedule, and the smoke profile's)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
