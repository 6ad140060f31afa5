"""What a finished job leaves on disk, and how to load it back safely.

A model directory holds `model.safetensors` (all weights, both encoders included, and the memory
bank; safetensors cannot carry code, so loading never runs a pickle), `config.json` (the
JobConfig), `scores.json` (per-image scores and the metrics) and, when the job calibrated them,
`thresholds.json` (the image and pixel thresholds and the rule that made them; memseg.calibration).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from memseg.atomic import write_atomic, write_text_atomic
from memseg.build import build_model
from memseg.config import JobConfig
from memseg.curves import TrainingCurves
from memseg.model import MemSeg
from memseg.result import JobResult, Thresholds

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
SCORES = "scores.json"
CURVES = "curves.json"  # the training curves and, with val_every, the validation curve
THRESHOLDS = "thresholds.json"  # the calibrated thresholds, when the job had calibration images


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
    if result.thresholds is not None:
        write_text_atomic(out_dir / THRESHOLDS, json.dumps(dataclasses.asdict(result.thresholds), indent=1))
    if result.curves is not None:
        write_text_atomic(out_dir / CURVES, json.dumps({"job_id": result.job_id, **curves_to_json(result.curves)}, indent=1))
    return out_dir


def curves_to_json(curves: TrainingCurves) -> dict[str, object]:
    """The curves as plain JSON: each series with its steps, a value that is not a number (a
    diverged step, an AUROC of one class) as null."""

    def plain(values: tuple[float, ...]) -> list[float | None]:
        return [v if math.isfinite(v) else None for v in values]

    return {
        "steps": list(curves.steps),
        "train": {name: plain(values) for name, values in curves.train.items()},
        "val_steps": list(curves.val_steps),
        "validation": {name: plain(values) for name, values in curves.validation.items()},
    }


def with_dir(result: JobResult, out_dir: Path) -> JobResult:
    return dataclasses.replace(result, artefacts_dir=str(out_dir))


def load_thresholds(model_dir: Path) -> Thresholds | None:
    """The thresholds a model directory carries (None: its job calibrated none)."""
    path = model_dir / THRESHOLDS
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())
        return Thresholds(
            image=float(values["image"]),
            pixel=float(values["pixel"]),
            rule=str(values["rule"]),
            source=str(values["source"]),
            images=int(values["images"]),
        )
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{path} is not a model's thresholds: {err!r}") from None


def load_model(model_dir: Path, device: str | torch.device = "cpu") -> tuple[MemSeg, JobConfig]:
    """The trained model and its config from a directory written by `save`. Weights come from
    safetensors only; the backbone is built without downloading anything."""
    config_path, weights_path = model_dir / CONFIG, model_dir / WEIGHTS
    missing = [str(p) for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not a MemSeg model directory, missing: {', '.join(missing)}")
    try:
        config = JobConfig.from_dict(json.loads(config_path.read_text()))
    except (ValueError, TypeError) as err:  # not JSON (JSONDecodeError is a ValueError), or not a JobConfig's fields
        raise ValueError(f"{config_path} is not a model's config: {err}") from None
    try:
        state = load_file(str(weights_path))
    except SafetensorError as err:  # random or truncated bytes
        raise ValueError(f"{weights_path} is damaged or not a safetensors file ({err})") from None
    # A model saved before revision 3 has one encoder (what ablation frozen_bn builds now), whatever its ablation.
    two_encoders = any(key.startswith("segment_encoder.") for key in state)
    model = build_model(config, backbone_weights="none", segment_encoder=two_encoders)
    model.load_state_dict(state)
    return model.to(device).eval(), config
