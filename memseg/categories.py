"""Per-category MemSeg settings in one visible table: memory size, DI scale, feature scale and the
foreground mask, as the official code (areylng/MemSeg, run_training.py) sets them.

A JobConfig field left at None takes its value from this table; a value given there (CLI flag,
sweep `overrides:`, profile) wins. The table is MVTec AD's: it applies only to the data sets whose
registry entry says so (mvtec and our generated MVTec-layout set); every other data set runs with
the official defaults and its registry default for the foreground mask (none), so a VisA or folder
category never picks up an MVTec AD row that happens to share its name. Order: explicit override >
this table (mvtec, synthetic) > the data set's default. `memseg.config.resolve` is the one place
that decides, and its result is what the model is built with and what each result row records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from memseg.data.registry import settings_of
from memseg.names import CATEGORIES, OBJECT_CATEGORIES


@dataclass(frozen=True)
class CategorySettings:
    """What differs between categories in the official code.

    memory_size: the first N sorted normal training images fill the bank and are held out from
        training (run_training.py `all_num`: 30; screw 120; toothbrush 10).
    di_scale: DI = |F_s - M| is multiplied by this before spatial attention and concatenation
        (`m_scale`: 100; transistor 1000).
    feature_scale: the raw (unsmoothed) layer1-3 features concatenated with DI are multiplied by
        this (`o_scale`: 100; cable and transistor 1).
    foreground_mask: Perlin masks are restricted to the object (object categories; the textures
        have no background to avoid).
    """

    memory_size: int = 30
    di_scale: float = 100.0
    feature_scale: float = 100.0
    foreground_mask: bool = False


def _settings(category: str) -> CategorySettings:
    return CategorySettings(
        memory_size={"screw": 120, "toothbrush": 10}.get(category, 30),
        di_scale={"transistor": 1000.0}.get(category, 100.0),
        feature_scale={"cable": 1.0, "transistor": 1.0}.get(category, 100.0),
        foreground_mask=category in OBJECT_CATEGORIES,
    )


# The table. Printed in docs/faithfulness.md; pinned by tests/memseg/test_categories.py.
CATEGORY_SETTINGS: dict[str, CategorySettings] = {c: _settings(c) for c in CATEGORIES}
# The settings of data sets without the table (and of names MVTec AD does not have): the official
# defaults, no foreground mask.
DEFAULT_SETTINGS = CategorySettings()


def uses_table(dataset: str) -> bool:
    """Whether `dataset` takes its per-category settings from CATEGORY_SETTINGS (the registry says)."""
    return settings_of(dataset).category_table


def category_settings(category: str, dataset: str = "mvtec") -> CategorySettings:
    """The table's row for `category` of `dataset` when that data set uses the table; else the
    official defaults with the data set's default foreground mask (memseg.data.registry)."""
    if uses_table(dataset) and category in CATEGORY_SETTINGS:
        return CATEGORY_SETTINGS[category]
    return dataclasses.replace(DEFAULT_SETTINGS, foreground_mask=settings_of(dataset).foreground_mask)
