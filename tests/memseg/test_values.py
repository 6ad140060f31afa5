"""The one check of a value against its dataclass field's declared type (memseg.values), as
JobConfig, sweep overrides, variants and flags all use it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memseg.config import JobConfig
from memseg.values import INT64_MAX, check_value, field_annotations


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        ("float", "fast", "must be a finite number, got 'fast' (str)"),
        ("float", math.inf, "must be a finite number, got inf"),
        ("float", -math.inf, "must be a finite number, got -inf"),
        ("float", math.nan, "must be a finite number, got nan"),
        ("float", True, "must be a finite number, got True (bool)"),
        ("int", 2.5, "must be an integer, got 2.5 (float)"),
        ("int", False, "must be an integer, got False (bool)"),
        ("int", INT64_MAX + 1, "a 64-bit integer"),
        ("float", 10**400, "a 64-bit integer"),
        ("str", 3, "must be text, got 3 (int)"),
        ("bool", "yes", "must be true or false, got 'yes' (str)"),
        ("int | None", "8", "must be an integer or null, got '8' (str)"),
        ("str", ["x"] * 10_000, "(list)"),
    ],
)
def test_a_value_of_another_kind_is_refused_naming_field_and_value(annotation, value, message):
    with pytest.raises(ValueError) as refused:
        check_value("field", annotation, value)
    assert str(refused.value).startswith("field ") and message in str(refused.value)
    assert len(str(refused.value)) < 300  # a huge value is shown cut


@pytest.mark.parametrize(
    ("annotation", "value"),
    [("float", 3), ("float", 1e-3), ("int", np.int64(5)), ("float", np.float32(0.5)), ("int | None", None), ("str", "")],
)
def test_values_of_the_declared_type_pass(annotation, value):
    check_value("field", annotation, value)


def test_every_jobconfig_field_has_a_checked_type():
    """A field whose annotation the check cannot read would go unchecked: each must be a plain one."""
    kinds = {"int", "float", "str", "bool", "None"}
    for name, annotation in field_annotations(JobConfig).items():
        assert {part.strip() for part in annotation.split("|")} <= kinds, (name, annotation)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": math.inf}, "lr must be a finite number"),
        ({"lr": "fast"}, "lr must be a finite number, got 'fast'"),
        ({"steps": 10.0}, "steps must be an integer"),
        ({"seed": 2**70}, "seed must be at most"),
        ({"compile": "false"}, "compile must be true or false"),
        ({"val_images": 4}, "give val_every N"),
        ({"variant": "v" * 200, "ablation": "no_coord_attention"}, "shorten the category or the variant name"),
    ],
)
def test_jobconfig_refuses_what_no_job_could_run(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        JobConfig(category="bottle", **changes)


def test_a_long_variant_within_the_limit_makes_a_job_id_within_it():
    config = JobConfig(category="bottle", variant="v" * 190)
    assert len(config.job_id.encode()) <= 223
