"""The held-out validation set: which images, the same set every time, and an evaluation
that leaves the model exactly as it found it."""

from __future__ import annotations

import math

import pytest
import torch

from memseg.build import build_model, build_simulator
from memseg.config import JobConfig
from memseg.loss import LossSettings
from memseg.model import MemSeg
from memseg.procedural import procedural_textures
from memseg.profiles import profile
from memseg.simulate import AnomalySimulator
from memseg.validation import ValidationSet, evaluate, make_validation_set, split_validation


def images(count: int) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_the_last_training_images_are_held_out_and_the_rest_train() -> None:
    train = images(10)
    kept, held_out = split_validation(train, 4)
    assert torch.equal(kept, train[:6]) and torch.equal(held_out, train[6:])
    with pytest.raises(ValueError, match="leaves no training image"):
        split_validation(train, 10)
    with pytest.raises(ValueError, match="at least 2"):
        split_validation(train, 1)


def _setup() -> tuple[MemSeg, AnomalySimulator, torch.Tensor]:
    config = JobConfig.from_dict(profile("tiny") | {"category": "bottle", "image_size": 64, "backbone_weights": "none"})
    torch.manual_seed(0)
    model = build_model(config)
    pictures = images(12)
    with torch.no_grad():
        model.fill_memory(pictures[:4].float() / 255)
    return model, build_simulator(config, procedural_textures(8, 64, seed=0)), pictures[4:]


def test_the_set_is_the_same_every_time_and_has_both_classes() -> None:
    _model, simulator, pictures = _setup()
    first = make_validation_set(pictures, simulator, seed=3, device=torch.device("cpu"))
    again = make_validation_set(pictures, simulator, seed=3, device=torch.device("cpu"))
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.masks, again.masks)
    assert 0 < int(first.labels.sum()) < len(first.labels)  # half the images get an anomaly
    assert "last 8 normal training images" in first.rule and "seed 3" in first.rule


def test_an_evaluation_changes_no_weight_no_statistic_and_no_random_stream() -> None:
    model, simulator, pictures = _setup()
    held_out = make_validation_set(pictures, simulator, seed=3, device=torch.device("cpu"))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.random.get_rng_state()
    point = evaluate(model, held_out, LossSettings(), top_k=100)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert model.segment_encoder is not None and model.segment_encoder.training
    assert model.training and not model.encoder.training
    assert 0.0 <= point.image_auroc <= 1.0 and 0.0 <= point.pixel_auroc <= 1.0 and point.loss > 0 and point.seconds > 0


def test_a_set_without_anomalies_gives_nan_metrics_not_an_error() -> None:
    model, _simulator, pictures = _setup()
    normal = pictures[:4].float() / 255
    held_out = ValidationSet(normal, torch.zeros(4, 1, 64, 64), torch.zeros(4, dtype=torch.long), "test")
    point = evaluate(model, held_out, LossSettings(), top_k=100)
    assert math.isnan(point.image_auroc) and math.isnan(point.pixel_auroc) and math.isfinite(point.loss)
