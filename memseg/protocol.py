"""The evaluation protocol of a job: how its metrics were measured, recorded beside them on every
result row, so that a comparison never pairs numbers that were measured in different ways.

Two numbers are comparable only when every field here is equal: pixel AUROC at 64 px with
nearest-resized masks is not pixel AUROC at each mask's own 1024 px, and a change to the metric
code (METRICS_VERSION) makes old and new numbers different quantities.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from memseg.config import JobConfig, check_eval_resolution
from memseg.data.registry import get_dataset

# The version of the metric definitions in memseg/metrics.py. Bump it whenever a change there gives
# any metric another value for the same maps and masks: rows of different versions never pair.
# (Kept here, not in metrics.py, so that reading a protocol never imports torch.)
METRICS_VERSION = "1"


@dataclass(frozen=True)
class EvalProtocol:
    """How one job's metrics were computed. The defaults are the protocol every job used before
    this was recorded, so a result row without these columns is read as having them."""

    eval_resolution: str = "model"
    mask_resize: str = "nearest-exact"  # how ground-truth masks reach the evaluation size ("none": untouched)
    map_resize: str = "none"  # how anomaly maps reach the evaluation size ("bilinear" at native resolution)
    aupro_fpr_limit: float = 0.3  # pixel_aupro's limit, from the data set's scoring protocol
    aupro_interpolation: str = "linear"  # PRO at the limit: linear between the neighbouring curve points
    top_k: int = 100  # image score: mean of the top-k pixels at 256 px, k scaled with the map's area
    metrics_version: str = METRICS_VERSION
    # How the data set's authors score it (memseg.data.registry.SCORINGS: its headline metrics),
    # and pixel_aupro_low's limit. Rows written before these were recorded read as mvtec_ad and
    # 0.05: every data set was scored with MVTec AD's four numbers then, and had no second AUPRO.
    scoring: str = "mvtec_ad"
    low_aupro_fpr_limit: float = 0.05

    def columns(self) -> dict[str, Any]:
        """The protocol as result-row columns (the field names, unchanged)."""
        return dataclasses.asdict(self)


PROTOCOL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EvalProtocol))
# What a row written before protocols were recorded used (top_k is read from its config instead).
LEGACY_PROTOCOL = EvalProtocol(metrics_version="1")


def protocol_for(config: JobConfig) -> EvalProtocol:
    """The protocol a job with this config is evaluated under (what `memseg.job.run` does)."""
    native = check_eval_resolution(config.eval_resolution) == "native"
    scoring = get_dataset(config.dataset).scoring_protocol
    return EvalProtocol(
        eval_resolution=config.eval_resolution,
        mask_resize="none" if native else "nearest-exact",
        map_resize="bilinear" if native else "none",
        aupro_fpr_limit=scoring.aupro_fpr_limit,
        top_k=config.top_k,
        scoring=scoring.name,
        low_aupro_fpr_limit=scoring.low_aupro_fpr_limit,
    )
