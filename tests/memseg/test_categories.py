"""The per-category settings table (official run_training.py values) and how a job resolves them."""

from __future__ import annotations

import pytest

from memseg.categories import CATEGORY_SETTINGS, DEFAULT_SETTINGS, CategorySettings, category_settings
from memseg.config import JobConfig, resolve
from memseg.names import CATEGORIES, OBJECT_CATEGORIES


def test_table_holds_the_official_values() -> None:
    assert set(CATEGORY_SETTINGS) == set(CATEGORIES)
    for category, row in CATEGORY_SETTINGS.items():
        assert row.memory_size == {"screw": 120, "toothbrush": 10}.get(category, 30), category
        assert row.di_scale == (1000.0 if category == "transistor" else 100.0), category
        assert row.feature_scale == (1.0 if category in ("cable", "transistor") else 100.0), category
        assert row.foreground_mask == (category in OBJECT_CATEGORIES), category
    assert category_settings("my_folder_category") == DEFAULT_SETTINGS == CategorySettings(30, 100.0, 100.0, False)


def _config(category: str = "transistor", **changes) -> JobConfig:
    return JobConfig(category=category, **changes)


def test_none_means_the_table_and_a_value_overrides_it() -> None:
    assert resolve(_config()) == CategorySettings(30, 1000.0, 1.0, True)
    assert resolve(_config("screw")) == CategorySettings(120, 100.0, 100.0, True)
    changed = resolve(_config(memory_size=7, di_scale=5.0, feature_scale=2.0, foreground_mask=False))
    assert changed == CategorySettings(7, 5.0, 2.0, False)
    assert resolve(_config("carpet", foreground_mask=True)).foreground_mask


def test_ablations_remove_what_they_name() -> None:
    unscaled = resolve(_config(ablation="unscaled", di_scale=50.0))
    assert (unscaled.di_scale, unscaled.feature_scale, unscaled.memory_size) == (1.0, 1.0, 30)
    assert not resolve(_config(ablation="no_foreground_mask", foreground_mask=True)).foreground_mask


def test_overrides_change_the_job_id_and_bad_values_are_refused() -> None:
    assert _config().job_id != _config(di_scale=1000.0).job_id  # explicit value = a different config
    for field, value in (("memory_size", 0), ("di_scale", 0.0), ("feature_scale", -1.0)):
        with pytest.raises(ValueError, match=field):
            _config(**{field: value})  # type: ignore[arg-type]


def test_the_table_is_mvtec_ads_an_override_wins_and_other_datasets_take_their_default() -> None:
    from memseg.config import foreground_rule

    # The same category name on a data set without the table never takes the MVTec AD row.
    assert resolve(_config("screw", dataset="folder")) == DEFAULT_SETTINGS
    assert resolve(_config("screw", dataset="synthetic")) == CATEGORY_SETTINGS["screw"]
    assert resolve(_config("candle", dataset="visa")) == CategorySettings(30, 100.0, 100.0, False)
    # Order: explicit override > the table > the data set's default.
    assert resolve(_config("candle", dataset="visa", foreground_mask=True)).foreground_mask
    assert not resolve(_config("bottle", foreground_mask=False)).foreground_mask
    rules = [
        foreground_rule(_config("candle", dataset="visa")),
        foreground_rule(_config("bottle")),
        foreground_rule(_config("candle", dataset="visa", foreground_mask=True)),
        foreground_rule(_config("bottle", ablation="no_foreground_mask", foreground_mask=True)),
    ]
    assert rules == ["dataset default", "category table", "override", "ablation"]
    # The job id hashes the bank size the job really uses: a folder "screw" has the default 30.
    assert _config("screw", dataset="folder").job_id == _config("screw", dataset="folder", memory_size=30).job_id
    assert _config("screw").job_id == _config("screw", memory_size=120).job_id
