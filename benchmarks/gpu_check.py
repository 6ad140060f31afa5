"""GPU checks that CPU CI cannot make: no host syncs inside the training step, and the training
step and inference figures of a paper-profile job at 256 px. Run by benchmarks/gpu_check.sh.

Counts host-device synchronisations with torch.cuda.set_sync_debug_mode("warn") over the job's
own training loop (`memseg.job.train_model`) with the logging interval beyond the run, so any sync
found is one the step itself makes.
"""

from __future__ import annotations

import warnings

import torch

from memseg.build import build_model, build_simulator
from memseg.config import JobConfig
from memseg.job import fill_memory, train_model
from memseg.precision import resolve_precision
from memseg.procedural import procedural_textures
from memseg.profiles import profile


def main() -> None:
    assert torch.cuda.is_available(), "gpu_check needs a CUDA GPU"
    device = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(device)}; torch {torch.__version__}", flush=True)
    config = JobConfig.from_dict(
        profile("paper")
        | {
            "category": "bottle",
            "backbone_weights": "none",
            "steps": 5,
            "log_every": 10**6,
            "device": "cuda",
            "step_mode": "eager",  # the eager step's own syncs; a capture synchronises by design
        }
    )
    images = torch.randint(0, 256, (64, 3, 256, 256), dtype=torch.uint8)
    model = build_model(config).to(device)
    fill_memory(model, images[: model.memory_size], device, resolve_precision(config.precision, device.type))
    simulator = build_simulator(config, procedural_textures(16, 256, seed=0).to(device))
    train_model(model, simulator, images, config, device, lambda _: None)  # warm-up: cuDNN autotune, allocator
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            outcome = train_model(model, simulator, images, config, device, lambda _: None)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    print(f"host syncs in {config.steps} training steps (plus the final loss read): {len(syncs)}", flush=True)
    for w in syncs[:10]:
        print(f"  {w.filename}:{w.lineno}: {str(w.message)[:160]}", flush=True)
    print(f"training: {outcome.steps_per_s:.2f} steps/s, {1000 / outcome.steps_per_s:.1f} ms/step at 256 px batch 8", flush=True)


if __name__ == "__main__":
    main()
