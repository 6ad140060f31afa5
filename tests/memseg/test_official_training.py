"""Conformance of the training step with the official wiring, in float64: three steps of the whole
model at 32 px through our step (memseg.train_step, its optimizer and scheduler) against a hand-written
transcription of what areylng/MemSeg run_training.py sets up (written from reading it, not copied):

    model.train()                                                  # no train() override: BNs in train mode
    optimizer = optim.SGD(model.parameters(), lr=0.04, momentum=0.9, weight_decay=3e-5)   # rt 71-72, 124
    scheduler = CosineAnnealingWarmRestarts(optimizer, 2701)                               # rt 125, 437
    loss_focal, loss_l1 = FocalLoss(), torch.nn.L1Loss()                                   # rt 120-121

and, where the official loop is unpublished, what we inferred (docs/faithfulness.md, "What we
infer"): loss = 0.6 * L1(p_anomaly, mask) + 0.4 * focal(p, mask), zero_grad, backward, step, then
scheduler.step(step). The model itself is ours, in both: its formulas are pinned one by one in
test_model_formulas.py. What this pins is everything around it: the parameters the optimizer moves
(all of them given, the frozen ones without a gradient), train-mode BatchNorm statistics, the loss
and the schedule. Logits, losses, every gradient, every parameter and every buffer agree to float64
rounding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn, optim
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts

from memseg import train_step as train_step_module
from memseg.build import build_model, loss_settings
from memseg.config import JobConfig
from memseg.model import MemSeg
from memseg.precision import resolve_precision
from memseg.profiles import profile
from memseg.train_step import StepParts, StepPath, make_optimizer, train_step
from tests.memseg.test_loss import official_focal

SIZE, BATCH, STEPS, MEMORY = 32, 4, 3, 3  # 32 px: the smallest MemSeg takes; float64 is slow
TOLERANCE = 1e-10  # relative, on tensors of float64 values: float64 rounding, not float32's 1e-7


class FixedAnomalies:
    """A stand-in simulator: a fixed square anomaly in every second image, in float64. Both sides
    get the same batches, so the step is compared, not the simulation (tested in test_simulate.py)."""

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        masks = torch.zeros(batch.shape[0], 1, SIZE, SIZE, dtype=torch.float64)
        masks[::2, :, 10:18, 12:20] = 1.0
        inputs = batch.double() * (1 - masks) + masks * 0.9
        return inputs, masks


@dataclass(frozen=True)
class Step:
    """What one training step showed: its logits, loss, every gradient and the lr it ran at."""

    logits: torch.Tensor
    loss: torch.Tensor
    grads: dict[str, torch.Tensor]
    lr: float


def _model() -> tuple[JobConfig, MemSeg, torch.Tensor]:
    config = JobConfig.from_dict(
        profile("paper") | {"category": "bottle", "image_size": SIZE, "memory_size": MEMORY, "backbone_weights": "none"}
    )
    torch.manual_seed(0)
    model = build_model(config).double()
    images = torch.randint(0, 256, (MEMORY + 8, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.fill_memory(images[:MEMORY].double() / 255)
    return config, model, images[MEMORY:]


def _official_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=1)
    return 0.6 * nn.L1Loss()(probs[:, 1], masks[:, 0]) + 0.4 * official_focal(probs, masks[:, 0])


def _official_steps(model: MemSeg, images: torch.Tensor, config: JobConfig) -> list[Step]:
    model.train()
    optimizer = optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = CosineAnnealingWarmRestarts(optimizer, config.steps)
    sampler, simulate = torch.Generator().manual_seed(config.seed), FixedAnomalies()
    trace = []
    for step in range(STEPS):
        index = torch.randint(len(images), (BATCH,), generator=sampler)
        inputs, masks = simulate(images[index].float() / 255, sampler)  # ToTensor: float32 in [0, 1]
        logits = model(inputs)
        loss = _official_loss(logits, masks)
        optimizer.zero_grad()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step(step)
        trace.append(Step(logits.detach(), loss.detach(), grads, lr))
    return trace


def _our_steps(model: MemSeg, images: torch.Tensor, config: JobConfig) -> list[Step]:
    device = torch.device("cpu")
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, "sgd", config.lr, config.weight_decay, device, StepPath("eager"), config.momentum)
    scheduler = train_step_module.make_scheduler(optimizer, config)
    logits_seen: list[torch.Tensor] = []
    net = model

    def recording_net(inputs: torch.Tensor) -> torch.Tensor:
        logits = net(inputs)
        logits_seen.append(logits.detach())
        return logits

    parts = StepParts(
        net=recording_net,
        simulator=FixedAnomalies(),  # type: ignore[arg-type]
        optimizer=optimizer,
        images=images,
        sampler=torch.Generator().manual_seed(config.seed),
        sim_generator=torch.Generator().manual_seed(config.seed + 1),
        batch_size=BATCH,
        precision=resolve_precision(config.precision, "cpu"),
        loss=loss_settings(config),
        step=torch.zeros((), dtype=torch.long),
        first_bad_step=torch.full((), -1, dtype=torch.long),
    )
    model.train()
    trace = []
    for _step in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        lr = optimizer.param_groups[0]["lr"]
        losses = train_step(parts)
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}  # kept after step()
        scheduler.step()
        trace.append(Step(logits_seen[-1], losses[0], grads, lr))
    return trace


def _relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-300))


def test_three_training_steps_equal_the_official_wiring_in_float64() -> None:
    config, model, images = _model()
    official = copy.deepcopy(model)
    ours_trace = _our_steps(model, images, config)
    official_trace = _official_steps(official, images, config)
    for step, (ours, theirs) in enumerate(zip(ours_trace, official_trace)):
        assert ours.logits.dtype == torch.float64
        assert ours.lr == theirs.lr, step  # the official scheduler's lr, bit for bit
        assert _relative(ours.logits, theirs.logits) < TOLERANCE, step
        assert _relative(ours.loss, theirs.loss) < TOLERANCE, step
        # The official optimizer is given every parameter; only those with a gradient move, and
        # they are exactly ours: the frozen encoders (requires_grad False) get none.
        assert set(ours.grads) == set(theirs.grads), step
        for name, grad in ours.grads.items():
            assert _relative(grad, theirs.grads[name]) < TOLERANCE, (step, name)
    for (name, got), want in zip(model.state_dict().items(), official.state_dict().values()):
        if got.is_floating_point():
            assert _relative(got, want) < TOLERANCE, name
        else:
            assert torch.equal(got, want), name
    # Train-mode BatchNorm: the segment encoder's statistics moved, the feature encoder's did not.
    fresh = _model()[1].state_dict()
    moved = [n for n, t in model.state_dict().items() if n.endswith("running_mean") and not torch.equal(t, fresh[n])]
    assert moved and all(n.startswith(("segment_encoder.", "msff.", "decoder.")) for n in moved)
    assert not any(n.startswith("encoder.") for n in moved)
