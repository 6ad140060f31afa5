"""What a MemSeg job returns: its result (JobResult, with a score per test image), the progress it
reports while it runs, and its pictures and curves (JobVisuals). Frozen dataclasses, so the
harness stores, ships and compares them without reading anything by key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from memseg.categories import CategorySettings
from memseg.caveats import random_init_on_real_data
from memseg.config import JobConfig, foreground_rule, resolve
from memseg.curves import TrainingCurves
from memseg.data.registry import settings_of
from memseg.protocol import EvalProtocol, protocol_for

# The keys of `JobResult.metrics`, in table order: result key -> label. Every table (the memseg CLI,
# the harness's summary, Markdown and HTML) takes its columns from here. Defined in this light
# module, not beside the computations in memseg.metrics, so that reading results (the harness's
# store, status and report) never imports torch.
# The labels of the two AUPROs name the limits every data set's protocol uses today (memseg.protocol
# records the limits on every row).
METRICS: dict[str, str] = {
    "image_auroc": "image AUROC",
    "image_aupr": "image AUPR",
    "pixel_auroc": "pixel AUROC",
    "pixel_f1": "pixel F1-max",
    "pixel_aupro": "AUPRO@0.3",
    "pixel_aupro_low": "AUPRO@0.05",
    "seg_f1": "SegF1",
}
# What a job measures at the thresholds it fixed on defect-free images before the test set
# (memseg.calibration): key -> label. NaN in a row without calibration images. pixel F1-max is
# their oracle counterpart: its threshold is the best one for the test set itself.
THRESHOLDED: dict[str, str] = {
    "image_precision": "image precision",
    "image_recall": "image recall",
    "image_f1": "image F1",
    "image_fpr": "image FPR",
    "seg_f1": "SegF1",
}
THRESHOLDS: tuple[str, ...] = ("image_threshold", "pixel_threshold")  # the thresholds themselves: numbers, not metrics
F1_THRESHOLD = "pixel_f1_threshold"  # the score at which pixel_f1 is reached; a number, not a metric
METRIC_KEYS: tuple[str, ...] = (
    "image_auroc", "image_aupr", "pixel_auroc", "pixel_f1", F1_THRESHOLD, "pixel_aupro", "pixel_aupro_low",
    "seg_f1", "image_precision", "image_recall", "image_f1", "image_fpr", *THRESHOLDS,
)  # fmt: skip


@dataclass(frozen=True)
class Progress:
    """What a running job reports: its phase (load | memory | train | calibrate | eval | private), how far it is,
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
class Thresholds:
    """The image and pixel thresholds a job fixed on defect-free images it never trained on, before
    any test image was read (memseg.calibration): `rule` how (e.g. "mean + 3 std"), `source` which
    images, `images` how many."""

    image: float
    pixel: float
    rule: str
    source: str
    images: int

    def describe(self) -> str:
        """The rule as a result row records it (`threshold_rule`)."""
        return f"{self.rule} of the scores of {self.images} defect-free images: {self.source}"


@dataclass(frozen=True)
class MapSet:
    """One split's anomaly maps, kept when a job is asked to (save_maps, predict_private) for the
    files the official tools read: `maps` (N, S, S) float32 at the model's resolution (a numpy array;
    the exporter upsamples each bilinearly to its image's `sizes` (height, width), as native
    evaluation does), the images' `paths` and `defect_types` ("" for images without ground truth).
    `split`: "test" (the evaluated set) or a split without ground truth (MVTec AD 2's
    test_private, test_private_mixed)."""

    split: str
    paths: tuple[str, ...]
    defect_types: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    maps: Any


@dataclass(frozen=True)
class JobFacts:
    """What a job ran with beyond its config, as memseg resolves it, once: the per-category
    settings (memseg.config.resolve), what the data set does differently and which rule decided
    the foreground mask (JSON, memseg.data.registry), the evaluation protocol, and whether the
    numbers say little (real images with a random-init backbone, memseg.caveats). A result row
    records these; the harness never derives them again."""

    settings: CategorySettings
    dataset_settings: str
    protocol: EvalProtocol
    random_init_real_data: bool


def job_facts(config: JobConfig, protocol: EvalProtocol | None = None) -> JobFacts:
    """The facts of a job with `config` (`protocol`: as the job recorded it, else as the config implies)."""
    extras = settings_of(config.dataset).to_dict()
    del extras["category_table"], extras["foreground_mask"]  # folded into the rule: the resolved value has its own column
    return JobFacts(
        settings=resolve(config),
        dataset_settings=json.dumps({**extras, "foreground_mask_rule": foreground_rule(config)}, sort_keys=True),
        protocol=protocol or protocol_for(config),
        random_init_real_data=random_init_on_real_data(config.dataset, config.backbone_weights),
    )


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
    visuals: JobVisuals | None = None  # pictures and curves; the driver writes them as files
    protocol: EvalProtocol | None = None  # how the metrics were measured; None: memseg.protocol.protocol_for(config)
    step_path: str = ""  # how the training steps ran: eager | graph | compile ("" without training)
    step_fallback: str = ""  # why that is not the step_mode asked for (a capture error, no CUDA), "" if it is
    curves: TrainingCurves | None = None  # loss, lr, step time per log interval (memseg.curves); the driver writes them
    facts: JobFacts | None = None  # filled at construction from the config and the protocol (job_facts)
    thresholds: Thresholds | None = None  # fixed before the test set was read; None without calibration images
    maps: tuple[MapSet, ...] = ()  # only when asked (save_maps, predict_private); the driver writes them as files

    def __post_init__(self) -> None:
        if self.facts is None:  # computed once, where the job ran
            object.__setattr__(self, "facts", job_facts(self.config, self.protocol))


@dataclass(frozen=True)
class ShownImage:
    """A test image a picture shows: its index in the test set, path, defect type, label, score."""

    index: int
    path: str
    defect_type: str
    label: int
    score: float


@dataclass(frozen=True)
class VisualPanel:
    """One prediction panel (PNG bytes) and what it shows; `role` says why it was chosen."""

    role: str
    image: ShownImage
    png: bytes


@dataclass(frozen=True)
class CurvePoints:
    """A curve thinned for plotting: false positive rates and the y values (TPR or PRO)."""

    fpr: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class JobVisuals:
    """What a job's predictions look like (memseg.visuals makes it on the worker, the harness
    writes it as files). `threshold` is the pixel F1-max threshold (None without masks); the
    pixel ROC and PRO curves are None without masks."""

    threshold: float | None
    thumb_size: int
    columns: tuple[str, ...]
    image_roc: CurvePoints
    pixel_roc: CurvePoints | None
    pro: CurvePoints | None
    panels: tuple[VisualPanel, ...]
    gif: bytes | None
    gif_items: tuple[ShownImage, ...]
