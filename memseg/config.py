"""The job contract: what one MemSeg train + eval run is given (JobConfig) and returns (JobResult).

Everything the harness and the CLI know about a job goes through these two frozen dataclasses,
so a config that is equal is the same experiment on any machine (see `job_id`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memseg.protocol import EvalProtocol, check_eval_resolution

# The 15 MVTec AD categories, in the order the literature tables use.
TEXTURE_CATEGORIES: tuple[str, ...] = ("carpet", "grid", "leather", "tile", "wood")
OBJECT_CATEGORIES: tuple[str, ...] = (
    "bottle",
    "cable",
    "capsule",
    "hazelnut",
    "metal_nut",
    "pill",
    "screw",
    "toothbrush",
    "transistor",
    "zipper",
)
CATEGORIES: tuple[str, ...] = tuple(sorted(TEXTURE_CATEGORIES + OBJECT_CATEGORIES))

DATASET_KINDS: tuple[str, ...] = ("mvtec", "folder", "synthetic")


@dataclass(frozen=True)
class Ablation:
    """Which parts of MemSeg are switched on. `full` has everything on; each ablation turns off
    exactly the part its name says."""

    name: str
    use_memory: bool = True
    use_coord_attention: bool = True
    use_spatial_attention: bool = True
    use_msff: bool = True
    texture_source: bool = True
    structure_source: bool = True
    foreground_mask: bool = True


ABLATIONS: dict[str, Ablation] = {
    a.name: a
    for a in (
        Ablation("full"),
        # No memory bank: DI = 0, and spatial attention (computed from DI) is off with it.
        Ablation("no_memory", use_memory=False, use_spatial_attention=False),
        Ablation("no_coord_attention", use_coord_attention=False),
        Ablation("no_spatial_attention", use_spatial_attention=False),
        Ablation("no_msff", use_msff=False),
        Ablation("texture_only", structure_source=False),
        Ablation("structure_only", texture_source=False),
        Ablation("no_foreground_mask", foreground_mask=False),
    )
}


def get_ablation(name: str) -> Ablation:
    """The ablation called `name`, or a ValueError that lists the valid names."""
    try:
        return ABLATIONS[name]
    except KeyError:
        raise ValueError(f"unknown ablation {name!r}; valid: {', '.join(ABLATIONS)}") from None


def check_category(name: str) -> str:
    """`name` if it is an MVTec AD category, else a ValueError that lists the valid names."""
    if name not in CATEGORIES:
        raise ValueError(f"unknown category {name!r}; valid: {', '.join(CATEGORIES)}")
    return name


@dataclass(frozen=True)
class JobConfig:
    """One MemSeg train + eval run. Defaults reproduce the paper profile (256 px, batch 8,
    5000 steps, AdamW lr 3e-3, cosine with 10% warm-up)."""

    category: str
    data_root: str | None = None  # None: the harness fills in its generated data set
    dataset: str = "mvtec"  # mvtec | folder | synthetic (synthetic = MVTec layout we generated)
    seed: int = 0
    ablation: str = "full"
    image_size: int = 256
    steps: int = 5000
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.1
    memory_size: int = 30  # normal training images held out to fill the memory bank
    anomaly_ratio: float = 0.5  # fraction of each batch that gets a simulated anomaly
    l1_weight: float = 0.6
    focal_weight: float = 0.4
    focal_gamma: float = 4.0
    top_k: int = 100  # image score = mean of the top-k pixel probabilities at 256 px
    eval_resolution: str = "model"  # model | native: pixel metrics at image_size, or at each mask's own size
    backbone_weights: str = "imagenet"  # imagenet | none | path to a ResNet18 state dict
    texture_dir: str | None = None  # DTD-style folder of texture images; None = procedural
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    compile: bool = False  # torch.compile the model (GPU speed-up, slow first step)
    eval_batch_size: int = 32
    log_every: int = 25  # steps between loss reports (and the only host syncs in the loop)
    out_dir: str | None = None  # where weights and per-image scores go; None = not saved

    def __post_init__(self) -> None:
        if self.dataset != "folder":  # a folder data set names its own categories
            check_category(self.category)
        get_ablation(self.ablation)
        if self.dataset not in DATASET_KINDS:
            raise ValueError(f"unknown dataset kind {self.dataset!r}; valid: {', '.join(DATASET_KINDS)}")
        if self.image_size < 32 or self.image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32 and >= 32, got {self.image_size}")
        for name in ("steps", "batch_size", "memory_size", "top_k", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.anomaly_ratio <= 1.0:
            raise ValueError(f"anomaly_ratio must be in [0, 1], got {self.anomaly_ratio}")
        check_eval_resolution(self.eval_resolution)

    def replace(self, **changes: Any) -> JobConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown JobConfig keys {unknown}; valid: {', '.join(sorted(known))}")
        return cls(**data)

    @property
    def ablation_flags(self) -> Ablation:
        return get_ablation(self.ablation)

    @property
    def job_id(self) -> str:
        return job_id(self)


# Fields that do not change the result: where the data and the outputs live, and how often
# progress is reported. Everything else is part of the experiment's identity.
_NOT_IN_ID = ("data_root", "out_dir", "log_every", "device", "eval_batch_size")
# Fields added after results were first stored: left out of the id while at this default, so the
# results made before a field existed keep their ids (and resume) and mean the same experiment.
_ID_DEFAULTS_LEFT_OUT = {"eval_resolution": "model"}


def experiment_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a config that make up the experiment: every field that changes the result,
    paths reduced to what they mean (a texture folder or a weights file by its name). `fields` is
    a config as plain data (a stored config_json); a field it lacks (a row written before that
    field existed) takes the field's default, which is what such a job ran with."""
    defaults = {f.name: f.default for f in dataclasses.fields(JobConfig) if f.default is not dataclasses.MISSING}
    out = {**defaults, **fields}
    for name in _NOT_IN_ID:
        out.pop(name, None)
    if out.get("texture_dir") is not None:
        out["texture_dir"] = Path(out["texture_dir"]).name
    if out.get("backbone_weights") not in (None, "imagenet", "none"):
        out["backbone_weights"] = "file:" + Path(out["backbone_weights"]).name
    return out


def job_id(config: JobConfig) -> str:
    """A short stable hash of the experiment's fields (`experiment_fields`), so the same
    experiment has the same id on a laptop and on a cluster node with a different mount point."""
    fields = experiment_fields(dataclasses.asdict(config))
    for name, default in _ID_DEFAULTS_LEFT_OUT.items():
        if fields[name] == default:
            fields.pop(name)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f"{config.category}-{config.ablation}-s{config.seed}-" + hashlib.sha256(canonical.encode()).hexdigest()[:10]


PROFILES: dict[str, dict[str, Any]] = {
    # The paper's recipe; needs a GPU (about 5 s per step at 256 px on 2 CPU cores).
    "paper": {},
    # CPU-friendly plumbing and learning check: 64 px, 150 steps, random backbone (no download).
    "smoke": {
        "image_size": 64,
        "steps": 150,
        "batch_size": 8,
        "memory_size": 10,
        "backbone_weights": "none",
        "eval_batch_size": 16,
    },
    # The harness's own tests: seconds per job.
    "tiny": {
        "image_size": 64,
        "steps": 4,
        "batch_size": 4,
        "memory_size": 4,
        "backbone_weights": "none",
        "log_every": 1,
    },
}


def profile(name: str) -> dict[str, Any]:
    """The JobConfig overrides of profile `name`, or a ValueError that lists the valid names."""
    try:
        return dict(PROFILES[name])
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class Progress:
    """What a running job reports: its phase (load | memory | train | eval), how far it is,
    and the latest training loss."""

    phase: str
    step: int
    total: int
    loss: float | None = None


@dataclass(frozen=True)
class ImageScore:
    """One test image's result."""

    path: str
    label: int  # 1 = anomalous
    defect_type: str
    score: float


@dataclass(frozen=True)
class JobResult:
    """What `memseg.job.run` returns. Metrics are fractions in [0, 1] (tables show percent);
    a metric that is undefined for the data (no masks: no pixel metrics) is NaN."""

    job_id: str
    config: JobConfig
    metrics: dict[str, float]
    image_scores: tuple[ImageScore, ...]
    timings: dict[str, float]
    environment: dict[str, str]
    artefacts_dir: str | None
    started_at: str
    finished_at: str
    final_loss: float
    extras: dict[str, Any] = field(default_factory=dict)
    protocol: EvalProtocol | None = None  # how the metrics were measured; None: memseg.protocol.protocol_for(config)
