"""Job identity is marked on each JobConfig field: a new RUNTIME field leaves every job id as it
was (so a resume re-runs nothing), a new RECIPE field changes them, an unmarked field is refused."""

from __future__ import annotations

import dataclasses
import json

import pytest

from memseg.config import OPTIONAL_RECIPE, RECIPE, RUNTIME, JobConfig, experiment_fields, id_fields, job_id
from memseg.data.registry import check_categories
from memseg.names import UnknownNameError
from memseg.profiles import TOOTOUCH_RECIPE, profile


def _with_field(name: str, default: object, metadata: dict[str, bool] | None) -> type[JobConfig]:
    """JobConfig as it would be with one more field."""
    extra = dataclasses.field(default=default, metadata=metadata) if metadata is not None else dataclasses.field(default=default)
    return dataclasses.make_dataclass("GrownConfig", [(name, type(default), extra)], bases=(JobConfig,), frozen=True)


CONFIGS = [
    {"category": "bottle"},
    {**profile("smoke"), "category": "screw", "ablation": "no_memory", "seed": 2},
    {**profile("tiny"), "category": "wood", "dataset": "synthetic", "texture_dir": "/data/dtd/images"},
]


def test_a_new_runtime_field_leaves_every_job_id_as_it_was():
    grown = _with_field("num_workers", 4, RUNTIME)
    for values in CONFIGS:
        before = JobConfig(**values).job_id
        assert job_id(grown(**values)) == before
        assert job_id(grown(**values, num_workers=16)) == before  # and its value does not count either


def test_a_new_recipe_field_is_part_of_the_id():
    grown = _with_field("dropout", 0.0, RECIPE)
    values = CONFIGS[0]
    assert job_id(grown(**values, dropout=0.1)) != job_id(grown(**values))
    assert "dropout" in id_fields(grown)


def test_a_new_optional_recipe_field_counts_only_away_from_its_default():
    """OPTIONAL_RECIPE: left out of the id while at its default (None or not), so earlier results
    keep their ids and resume; any other value is a different experiment."""
    for name, default, other in (("warp", "off", "on"), ("blur_sigma", None, 1.5)):
        grown = _with_field(name, default, OPTIONAL_RECIPE)
        for values in CONFIGS:
            before = JobConfig(**values).job_id
            assert job_id(grown(**values)) == before
            assert job_id(grown(**values, **{name: other})) != before
    base = JobConfig("bottle")
    assert base.replace(eval_resolution="model").job_id == base.job_id != base.replace(eval_resolution="native").job_id


def test_an_unmarked_field_is_refused_naming_it():
    grown = _with_field("num_workers", 4, None)
    with pytest.raises(TypeError, match=r"\['num_workers'\] are not marked"):
        job_id(grown(**CONFIGS[0]))


def test_paths_and_runtime_fields_are_not_in_the_id():
    assert set(id_fields()).isdisjoint({"data_root", "out_dir", "log_every", "device", "eval_batch_size"})
    base = JobConfig("bottle")
    assert base.replace(data_root="/a", out_dir="/b", device="cpu", log_every=3, eval_batch_size=2).job_id == base.job_id


def test_one_validator_names_every_unknown_name_and_the_valid_ones():
    with pytest.raises(UnknownNameError, match=r"unknown categories \['bottel', 'gird'\]; valid: all, bottle"):
        check_categories(["bottle", "bottel", "gird"], also_valid=("all",))
    with pytest.raises(ValueError, match="unknown ablations"):
        JobConfig("bottle", ablation="no_brain")
    with pytest.raises(ValueError, match=r"unknown kinds \['mvtek'\]; valid: mvtec, folder, synthetic"):
        JobConfig("bottle", dataset="mvtek")


REVISION_3_FIELDS = ("optimizer", "momentum", "schedule", "focal_alpha_normal", "focal_alpha_anomaly", "focal_smooth")


def test_the_recipe_fields_of_revision_3_are_in_the_id_and_a_config_stored_before_them_reads_as_what_it_ran():
    """optimizer, momentum, schedule and the focal fields change the result (in the id); a stored
    config written before they existed ran AdamW, warm-up cosine and the exact focal loss, and that
    experiment keeps its id (they stay out of it while at those values)."""
    assert set(REVISION_3_FIELDS) <= set(id_fields())
    base = JobConfig("bottle")
    for change in ({"optimizer": "adamw"}, {"momentum": 0.5}, {"schedule": "warmup_cosine"}, {"focal_smooth": 0.0}):
        assert base.replace(**change).job_id != base.job_id, change
    revision_2 = JobConfig("bottle", **TOOTOUCH_RECIPE, precision="auto")  # revision 2 computed in `auto`
    stored_before = {k: v for k, v in json.loads(revision_2.to_json()).items() if k not in REVISION_3_FIELDS}
    fields = experiment_fields(stored_before)
    assert fields["optimizer"] == "adamw" and fields["schedule"] == "warmup_cosine"
    assert (fields["focal_alpha_normal"], fields["focal_alpha_anomaly"], fields["focal_smooth"]) == (1.0, 1.0, 0.0)
    assert fields == experiment_fields(json.loads(revision_2.to_json()))  # the same experiment ...
    assert revision_2.job_id == "bottle-full-s0-f36388480a"  # ... and the id it had before revision 3
    assert experiment_fields(json.loads(JobConfig("bottle").to_json()))["optimizer"] == "sgd"  # stored after: as stored
    with pytest.raises(UnknownNameError, match=r"unknown optimizers \['lion'\]; valid: sgd, adamw"):
        JobConfig("bottle", optimizer="lion")
    with pytest.raises(UnknownNameError, match="unknown schedules"):
        JobConfig("bottle", schedule="step")
