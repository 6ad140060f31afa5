"""What a finished job leaves on disk, and how to load it back safely.

A model directory holds `model.safetensors` (all weights, both encoders included, and the memory
bank; safetensors cannot carry code, so loading never runs a pickle), `config.json` (the
JobConfig) and `scores.json` (per-image scores and the metrics).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from memseg.atomic import write_atomic, write_text_atomic
from memseg.build import build_model
from memseg.config import JobConfig
from memseg.model import MemSeg
from memseg.result import JobResult

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
SCORES = "scores.json"


def save(result: JobResult, model: MemSeg, out_dir: Path) -> Path:
    """Write the model, its config and the per-image scores of `result` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    write_atomic(out_dir / WEIGHTS, lambda tmp: save_file(state, str(tmp)))
    write_text_atomic(out_dir / CONFIG, result.config.to_json())
    scores = {
        "job_id": result.job_id,
        "metrics": result.metrics,
        "images": [dataclasses.asdict(s) for s in result.image_scores],
    }
    write_text_atomic(out_dir / SCORES, json.dumps(scores, indent=1))
    return out_dir


def with_dir(result: JobResult, out_dir: Path) -> JobResult:
    return dataclasses.replace(result, artefacts_dir=str(out_dir))


def load_model(model_dir: Path, device: str | torch.device = "cpu") -> tuple[MemSeg, JobConfig]:
    """The trained model and its config from a directory written by `save`. Weights come from
    safetensors only; the backbone is built without downloading anything."""
    config_path, weights_path = model_dir / CONFIG, model_dir / WEIGHTS
    missing = [str(p) for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not a MemSeg model directory, missing: {', '.join(missing)}")
    config = JobConfig.from_dict(json.loads(config_path.read_text()))
    state = load_file(str(weights_path))
    # A model saved before revision 3 has one encoder (what ablation frozen_bn builds now), whatever its ablation.
    two_encoders = any(key.startswith("segment_encoder.") for key in state)
    model = build_model(config, backbone_weights="none", segment_encoder=two_encoders)
    model.load_state_dict(state)
    return model.to(device).eval(), config
