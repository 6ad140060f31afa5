"""GPU check of the captured training step (memseg.train_step), which CPU CI cannot run. Run by
benchmarks/gpu_check.sh; exits non-zero when a check fails.

1. Fresh randomness per replay: two consecutive replays of the captured step draw different
   batches and different anomaly masks (the step records them into buffers inside the graph).
2. The same training: a paper-profile job (256 px, random backbone) trained --steps steps eagerly
   and from the graph, same seed; the losses of the second half agree in distribution
   (two-sample Kolmogorov-Smirnov p > 0.001 and window means within 25 %).
"""

from __future__ import annotations

import argparse
import sys

import torch
from scipy.stats import ks_2samp

from memseg.build import build_model, build_simulator, loss_settings
from memseg.config import JobConfig
from memseg.job import train_model
from memseg.model import MemSeg
from memseg.precision import resolve_precision
from memseg.procedural import procedural_textures
from memseg.profiles import profile
from memseg.result import Progress
from memseg.simulate import AnomalySimulator
from memseg.train_step import GRAPH_WARMUP_STEPS, StepParts, StepRunner, make_optimizer, plan_step_path


class RecordingSimulator(AnomalySimulator):
    """The job's simulator that also copies each step's batch and masks into fixed buffers, so
    what a graph replay drew can be read after it (made at the first, eager, call: before capture)."""

    seen_masks: torch.Tensor
    seen_batch: torch.Tensor

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        out, masks = super().__call__(images, generator)
        if not hasattr(self, "seen_masks"):
            self.seen_masks, self.seen_batch = torch.zeros_like(masks), torch.zeros_like(images)
        self.seen_masks.copy_(masks)
        self.seen_batch.copy_(images)
        return out, masks


def config_for(steps: int, mode: str) -> JobConfig:
    return JobConfig.from_dict(
        profile("paper") | {"category": "bottle", "backbone_weights": "none", "steps": steps, "device": "cuda", "step_mode": mode}
    )


def setup(config: JobConfig, device: torch.device) -> tuple[MemSeg, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    model = build_model(config).to(device)
    with torch.no_grad():
        model.fill_memory(images[:30].to(device).float() / 255)
    return model, images[30:], procedural_textures(16, 256, seed=0).to(device)


def check_fresh_draws(device: torch.device) -> bool:
    config = config_for(10, "graph")
    model, images, bank = setup(config, device)
    simulator = RecordingSimulator(build_simulator(config, bank).config, bank)
    path = plan_step_path("graph", False, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, config.optimizer, config.lr, config.weight_decay, device, path, config.momentum)
    parts = StepParts(
        net=model,
        simulator=simulator,
        optimizer=optimizer,
        images=images.to(device),
        sampler=torch.Generator(device=device).manual_seed(0),
        sim_generator=torch.Generator(device=device).manual_seed(1),
        batch_size=config.batch_size,
        precision=resolve_precision("bf16", device.type),
        loss=loss_settings(config),
        step=torch.zeros((), dtype=torch.long, device=device),
        first_bad_step=torch.full((), -1, dtype=torch.long, device=device),
    )
    runner = StepRunner(parts, path)
    model.train()
    seen = []
    for _ in range(GRAPH_WARMUP_STEPS + 3):
        runner()
        torch.cuda.synchronize()
        seen.append((simulator.seen_batch.clone(), simulator.seen_masks.clone()))
    print(f"step path: {runner.path.name} {runner.path.fallback}", flush=True)
    if runner.path.name != "graph":
        print("FAIL: the step was not captured", flush=True)
        return False
    (batch_a, masks_a), (batch_b, masks_b) = seen[-2], seen[-1]
    masks_differ, batches_differ = not torch.equal(masks_a, masks_b), not torch.equal(batch_a, batch_b)
    print(
        f"two consecutive replays: masks differ {masks_differ}, batches differ {batches_differ}; "
        f"mask fractions {masks_a.mean().item():.3f} / {masks_b.mean().item():.3f}; steps counted {int(parts.step)}",
        flush=True,
    )
    return masks_differ and batches_differ and int(parts.step) == GRAPH_WARMUP_STEPS + 3


def losses(mode: str, steps: int, device: torch.device) -> tuple[list[float], str, float]:
    config = config_for(steps, mode).replace(log_every=1)
    model, images, bank = setup(config, device)
    events: list[Progress] = []
    outcome = train_model(model, build_simulator(config, bank), images, config, device, events.append)
    path = outcome.step_path.name + (f" ({outcome.step_path.fallback})" if outcome.step_path.fallback else "")
    return [float(e.loss) for e in events if e.phase == "train" and e.loss is not None], path, outcome.steps_per_s


def check_same_training(steps: int, device: torch.device) -> bool:
    eager, eager_path, _ = losses("eager", steps, device)
    graph, graph_path, _ = losses("graph", steps, device)
    half = steps // 2
    e_tail, g_tail = eager[half:], graph[half:]
    e_mean, g_mean = sum(e_tail) / len(e_tail), sum(g_tail) / len(g_tail)
    p_value = ks_2samp(e_tail, g_tail).pvalue
    close = abs(g_mean - e_mean) <= 0.25 * e_mean
    print(f"{steps} steps, eager ran as {eager_path}, graph ran as {graph_path}", flush=True)
    print(f"loss over steps {half}..{steps}: eager mean {e_mean:.4f}, graph mean {g_mean:.4f}; KS p = {p_value:.3g}", flush=True)
    return graph_path == "graph" and close and p_value > 1e-3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("graph_check: needs a CUDA GPU (CUDA graphs do not exist on the CPU); run it on a GPU machine")
    device = torch.device("cuda")
    fresh = check_fresh_draws(device)
    same = check_same_training(args.steps, device)
    print(
        f"fresh draws per replay: {'ok' if fresh else 'FAIL'}; graph and eager train alike: {'ok' if same else 'FAIL'}",
        flush=True,
    )
    sys.exit(0 if fresh and same else 1)


if __name__ == "__main__":
    main()
