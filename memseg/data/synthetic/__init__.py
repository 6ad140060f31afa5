"""The generated data set: all 15 MVTec AD categories drawn procedurally, in MVTec AD's layout, with
exact masks (see generation.py). drawing: primitives; defects: what a sample and a defect are, and
the shared defect appearances; textures and objects: the categories; registry: the specs.
"""

from memseg.data.synthetic.generation import (
    AREA_RANGE,
    CHANGE_THRESHOLD,
    GENERATOR_VERSION,
    IN_PROGRESS,
    MARKER,
    Sample,
    ensure_synthetic,
    generate,
    read_marker,
    render_sample,
)
from memseg.data.synthetic.registry import SPECS, defect_types, is_grey

__all__ = [
    "AREA_RANGE",
    "CHANGE_THRESHOLD",
    "GENERATOR_VERSION",
    "IN_PROGRESS",
    "MARKER",
    "SPECS",
    "Sample",
    "defect_types",
    "ensure_synthetic",
    "generate",
    "is_grey",
    "read_marker",
    "render_sample",
]
