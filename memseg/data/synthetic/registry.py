"""The registry of the synthetic data set: every category's spec (grey or colour, its scene and
its defect types), and the questions the rest of the code asks of it."""

from __future__ import annotations

from memseg.data.registry import check_category
from memseg.data.synthetic.defects import CategorySpec
from memseg.data.synthetic.objects import OBJECT_SPECS
from memseg.data.synthetic.textures import TEXTURE_SPECS
from memseg.data.types import DataError
from memseg.names import UnknownNameError

SPECS: dict[str, CategorySpec] = {spec.name: spec for spec in (*TEXTURE_SPECS, *OBJECT_SPECS)}


def category_spec(category: str) -> CategorySpec:
    """The spec of `category`, or a DataError listing the valid categories."""
    try:
        return SPECS[check_category(category)]
    except UnknownNameError as err:
        raise DataError.unknown(err) from None


def defect_types(category: str) -> tuple[str, ...]:
    """The defect types the generator draws for `category`."""
    return tuple(category_spec(category).defects)


def is_grey(category: str) -> bool:
    """Whether the category is stored as 8-bit grayscale PNGs (grid, screw, zipper, as in MVTec AD)."""
    return category_spec(category).grey
