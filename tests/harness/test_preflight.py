"""The data preflight (harness.preflight) counts the normal training images each category's jobs
hold out (memory bank, validation curve): too few is a problem before any job starts, not a
failure of every job at run time."""

from __future__ import annotations

from pathlib import Path

from harness.options import DEFAULT_DATA_CHECK
from harness.preflight import check_data_here, data_groups
from memseg.config import JobConfig
from memseg.data.synthetic import generate


def test_too_few_training_images_for_what_the_jobs_hold_out_is_a_problem(tmp_path: Path):
    root = generate(tmp_path / "data", categories=("bottle",), image_size=64, n_train=6, n_test_good=1, n_test_defect_per_type=1)
    base = JobConfig(category="bottle", dataset="synthetic", data_root=str(root), memory_size=3, val_every=2)
    fits = base.replace(val_images=2)  # 3 + 2 + 1 = 6
    too_many = base.replace(val_images=3)  # 3 + 3 + 1 = 7
    assert check_data_here(DEFAULT_DATA_CHECK, data_groups([fits]), None).problems == ()
    (problem,) = check_data_here(DEFAULT_DATA_CHECK, data_groups([fits, too_many]), None).problems
    assert problem == (
        f"{root / 'bottle'}: 6 normal training images, but a job needs 7 "
        "(3 for the memory bank, 3 held out for the validation curve and at least 1 to train on)"
    )
