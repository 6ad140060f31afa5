"""The training-curves contract: each series has a value per step, every series has one name and
label, a validation series is always labelled as validation on simulated anomalies, and the module
is a leaf (it imports nothing from memseg)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import memseg.curves
from memseg.curves import SERIES_LABELS, TRAIN_SERIES, VALIDATION_LABEL, VALIDATION_SERIES, TrainingCurves, label_of
from memseg.result import JobResult


def test_every_series_needs_a_value_per_step():
    with pytest.raises(ValueError, match="train/loss has 1 values for 2 steps"):
        TrainingCurves((10, 20), {"loss": (1.0,)})
    with pytest.raises(ValueError, match="validation/image_auroc has 2 values for 1 steps"):
        TrainingCurves((10,), {"loss": (1.0,)}, (10,), {"image_auroc": (0.5, 0.6)})


def test_series_are_named_by_group_and_aligned_with_their_steps():
    curves = TrainingCurves((10, 20), {"loss": (1.0, 0.5), "lr": (0.1, 0.05)}, (20,), {"image_auroc": (0.7,)})
    assert curves.series() == {
        "train/loss": ((10, 20), (1.0, 0.5)),
        "train/lr": ((10, 20), (0.1, 0.05)),
        "validation/image_auroc": ((20,), (0.7,)),
    }
    assert curves.has_validation and not TrainingCurves((10,), {"loss": (1.0,)}).has_validation


def test_every_validation_label_says_simulated_anomalies():
    assert set(SERIES_LABELS) == {f"train/{k}" for k in TRAIN_SERIES} | {f"validation/{k}" for k in VALIDATION_SERIES}
    for name in (*(f"validation/{k}" for k in VALIDATION_SERIES), "validation/something_new"):
        assert VALIDATION_LABEL in label_of(name)
    assert all(VALIDATION_LABEL not in label_of(f"train/{k}") for k in TRAIN_SERIES)


def test_the_module_is_a_leaf_and_results_carry_curves():
    tree = ast.parse(Path(memseg.curves.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.split(".")[0] in ("memseg", "harness")]
    assert JobResult.__dataclass_fields__["curves"].default is None
