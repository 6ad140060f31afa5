"""Building what a job trains from its JobConfig: the model, the anomaly-source texture bank, the
anomaly simulator and the loss settings. The job layer's side of the seam: the model and the simulator take plain
arguments, and the mapping from a JobConfig to those arguments lives here, in one place.
"""

from __future__ import annotations

from pathlib import Path

import torch

from memseg.categories import uses_table
from memseg.config import JobConfig, resolve
from memseg.data.textures import load_texture_folder
from memseg.loss import LossSettings
from memseg.model import MemSeg
from memseg.procedural import procedural_textures
from memseg.simulate import AnomalySimulator, SimulationConfig


def build_model(config: JobConfig, backbone_weights: str | None = None, segment_encoder: bool | None = None) -> MemSeg:
    """The MemSeg a job's ablation and category ask for (settings from memseg.config.resolve).
    backbone_weights overrides the config's (loading a trained model rebuilds without download);
    segment_encoder the ablation's (a model saved before revision 3 has one encoder)."""
    ablation, settings = config.ablation_flags, resolve(config)
    return MemSeg(
        image_size=config.image_size,
        memory_size=settings.memory_size,
        use_memory=ablation.use_memory,
        use_msff=ablation.use_msff,
        use_coord_attention=ablation.use_coord_attention,
        use_spatial_attention=ablation.use_spatial_attention,
        di_scale=settings.di_scale,
        feature_scale=settings.feature_scale,
        backbone_weights=config.backbone_weights if backbone_weights is None else backbone_weights,
        joint_memory=ablation.joint_memory,
        segment_encoder=ablation.segment_encoder if segment_encoder is None else segment_encoder,
    )


def load_texture_bank(config: JobConfig, procedural_count: int = 64) -> torch.Tensor:
    """The anomaly-source textures (K, 3, S, S) uint8: the DTD-style folder when one is given,
    else a seeded bank of procedural textures."""
    if config.texture_dir is not None:
        return load_texture_folder(Path(config.texture_dir), config.image_size, seed=config.seed)
    return procedural_textures(procedural_count, config.image_size, seed=config.seed)


def simulation_config(config: JobConfig) -> SimulationConfig:
    """The simulation a job's config asks for: its category, size and anomaly ratio, the ablation's
    source switches, and the foreground mask as memseg.config.resolve decides it (override >
    MVTec AD table > the data set's default; off under the no_foreground_mask ablation)."""
    ablation = config.ablation_flags
    return SimulationConfig(
        category=config.category,
        image_size=config.image_size,
        anomaly_ratio=config.anomaly_ratio,
        texture_source=ablation.texture_source,
        structure_source=ablation.structure_source,
        foreground_mask=resolve(config).foreground_mask,
        foreground_table=uses_table(config.dataset),
    )


def build_simulator(config: JobConfig, texture_bank: torch.Tensor | None) -> AnomalySimulator:
    """The simulator of a job (`simulation_config`). The bank is ignored when textures are off."""
    return AnomalySimulator(simulation_config(config), texture_bank)


def loss_settings(config: JobConfig) -> LossSettings:
    """The loss of the job's recipe: its l1 / focal weights, gamma, class weights and smoothing."""
    return LossSettings(
        l1_weight=config.l1_weight,
        focal_weight=config.focal_weight,
        gamma=config.focal_gamma,
        alpha_normal=config.focal_alpha_normal,
        alpha_anomaly=config.focal_alpha_anomaly,
        smooth=config.focal_smooth,
    )
