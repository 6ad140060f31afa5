"""Building from a JobConfig (memseg.build): the simulator and the model a job's config asks for."""

from __future__ import annotations

import torch

from memseg.ablations import ABLATIONS
from memseg.build import build_model, build_simulator, simulation_config
from memseg.config import JobConfig

SIZE = 64


def test_the_built_simulator_follows_the_ablation() -> None:
    bank = torch.zeros(4, 3, SIZE, SIZE, dtype=torch.uint8)
    for name in ABLATIONS:
        job = JobConfig(category="capsule", ablation=name, image_size=SIZE, anomaly_ratio=0.25)
        sim = build_simulator(job, bank)
        flags = ABLATIONS[name]
        assert (sim.config.texture_source, sim.config.structure_source, sim.config.foreground_mask) == (
            flags.texture_source,
            flags.structure_source,
            flags.foreground_mask,
        )
        assert sim.config.category == "capsule" and sim.anomaly_count(8) == 2


def test_the_foreground_mask_and_table_follow_the_category_settings() -> None:
    # A texture category has no object to restrict anomalies to; an override wins over the table;
    # a data set without the MVTec AD table never looks up its thresholds.
    assert not simulation_config(JobConfig(category="carpet", image_size=SIZE)).foreground_mask
    assert simulation_config(JobConfig(category="carpet", image_size=SIZE, foreground_mask=True)).foreground_mask
    assert not simulation_config(JobConfig(category="candle", dataset="visa", image_size=SIZE)).foreground_table


def test_the_built_model_follows_the_ablation_and_the_category_table() -> None:
    model = build_model(JobConfig(category="transistor", image_size=SIZE, backbone_weights="none", ablation="frozen_bn"))
    assert (model.memory_size, model.di_scale, model.feature_scale) == (30, 1000.0, 1.0)
    assert model.segment_encoder is None  # frozen_bn: one encoder
