"""Thresholds chosen without the test set: the rule by hand, which images it uses, and a job that
fixes both thresholds before any test image is read (the test tensors are watched: every operation
on them is noted with the progress event count at that moment)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from memseg import calibration
from memseg import job as job_module
from memseg.config import JobConfig
from memseg.data.lookalike import generate_like
from memseg.data.synthetic import generate
from memseg.metrics import image_threshold_metrics
from memseg.profiles import profile
from memseg.result import THRESHOLDED
from tests.memseg.watched import WatchedRun, watched_run


def test_mean_plus_three_population_std_by_hand() -> None:
    values = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    # mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5
    assert calibration.mean_plus_sigmas(values) == pytest.approx(3.0 + 3.0 * math.sqrt(3.5), abs=1e-12)
    assert calibration.mean_plus_sigmas(torch.tensor([0.25])) == 0.25  # one value: std 0
    with pytest.raises(ValueError, match="at least one defect-free image"):
        calibration.mean_plus_sigmas(torch.zeros(0))


def test_calibrate_thresholds_images_and_pixels_apart() -> None:
    maps = torch.tensor([[[0.0, 1.0]], [[1.0, 2.0]]])  # pixels 0, 1, 1, 2: mean 1, std sqrt(0.5)
    scores = torch.tensor([0.5, 1.5])  # mean 1, std 0.5
    thresholds = calibration.calibrate(maps, scores, "somewhere")
    assert thresholds.pixel == pytest.approx(1.0 + 3.0 * math.sqrt(0.5), abs=1e-12)
    assert thresholds.image == pytest.approx(2.5, abs=1e-12)
    assert thresholds.images == 2 and thresholds.rule == calibration.RULE
    assert thresholds.describe() == "mean + 3 std (population) of the scores of 2 defect-free images: somewhere"


def test_the_calibration_images_are_the_last_training_images() -> None:
    images = torch.arange(10).reshape(10, 1)
    train, held_out = calibration.split_calibration(images, 3)
    assert held_out.flatten().tolist() == [7, 8, 9] and train.flatten().tolist() == list(range(7))
    with pytest.raises(ValueError, match="leaves no training image"):
        calibration.split_calibration(images, 10)


def test_image_threshold_metrics_by_hand() -> None:
    scores = torch.tensor([0.1, 0.6, 0.4, 0.9, 0.5])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # at 0.5 (>=): called anomalous 0.6 (FP), 0.9 (TP), 0.5 (TP); missed 0.4 (FN)
    got = image_threshold_metrics(scores, labels, 0.5)
    assert got == pytest.approx({"image_precision": 2 / 3, "image_recall": 2 / 3, "image_f1": 4 / 6, "image_fpr": 1 / 2})
    nothing = image_threshold_metrics(scores, labels, 5.0)
    assert nothing == {"image_precision": 0.0, "image_recall": 0.0, "image_f1": 0.0, "image_fpr": 0.0}


# ---------------------------------------------------------------------------------------------
# A job: thresholds before the test set
# ---------------------------------------------------------------------------------------------


def assert_thresholds_came_first(run: WatchedRun) -> None:
    """Every operation on a test tensor comes after the last calibration event (so after the
    thresholds were computed), and the calibration did happen."""
    calibrate = [i for i, e in enumerate(run.events) if e.phase == "calibrate"]
    assert calibrate, "no calibration happened"
    assert run.seen_at, "the test set was never read: the watch is broken"
    assert min(run.seen_at) >= calibrate[-1] + 1, (min(run.seen_at), calibrate[-1])


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, categories=("bottle",), image_size=64, n_train=14, n_test_good=3, n_test_defect_per_type=1, seed=0)
    return root


def tiny(root: Path, **changes: Any) -> JobConfig:
    values = profile("tiny") | {"category": "bottle", "data_root": str(root), "dataset": "synthetic", "steps": 4}
    return JobConfig.from_dict(values | changes)


def test_a_job_fixes_its_thresholds_on_held_out_training_images_before_reading_the_test_set(synthetic_root: Path) -> None:
    run = watched_run(tiny(synthetic_root, calibrate_images=4))
    assert_thresholds_came_first(run)
    result = run.result
    thresholds = result.thresholds
    assert thresholds is not None and thresholds.images == 4
    assert thresholds.source == calibration.HELD_OUT.format(count=4)
    assert result.metrics["image_threshold"] == thresholds.image and result.metrics["pixel_threshold"] == thresholds.pixel
    for key in THRESHOLDED:
        assert 0.0 <= result.metrics[key] <= 1.0, key
    # the test set at the image threshold, recomputed from the stored scores
    scores = torch.tensor([s.score for s in result.image_scores])
    labels = torch.tensor([s.label for s in result.image_scores])
    expected = image_threshold_metrics(scores, labels, thresholds.image)
    assert {k: result.metrics[k] for k in expected} == pytest.approx(expected, abs=1e-12)


def test_without_calibration_images_there_is_no_threshold_and_the_id_is_as_before(synthetic_root: Path) -> None:
    result = job_module.run(tiny(synthetic_root))
    assert result.thresholds is None
    assert all(math.isnan(result.metrics[k]) for k in (*THRESHOLDED, "image_threshold", "pixel_threshold"))
    assert "calibrate_images" not in result.config.to_json() or result.config.calibrate_images == 0
    assert tiny(synthetic_root).job_id != tiny(synthetic_root, calibrate_images=4).job_id  # holding out is a recipe


def test_a_job_refuses_to_hold_out_every_training_image(synthetic_root: Path) -> None:
    with pytest.raises(ValueError, match="lower calibrate_images"):
        job_module.run(tiny(synthetic_root, calibrate_images=14 - 4))  # the tiny profile's bank holds 4


@pytest.mark.slow
def test_mvtec_ad2_calibrates_on_its_validation_split_and_reports_seg_f1(tmp_path: Path) -> None:
    root = generate_like(
        "mvtec_ad2", tmp_path / "ad2", ["walnuts"], image_size=64, n_train=8, n_test_good=3, n_test_defect_per_type=1
    )
    validation = sorted((root / "walnuts" / "validation" / "good").iterdir())
    config = JobConfig.from_dict({**profile("tiny"), "category": "walnuts", "dataset": "mvtec_ad2", "data_root": str(root)})
    run = watched_run(config)
    assert_thresholds_came_first(run)
    result = run.result
    assert result.thresholds is not None and result.thresholds.images == len(validation) > 0
    assert result.thresholds.source == calibration.VALIDATION
    assert result.protocol is not None and result.protocol.scoring == "mvtec_ad2"
    for key in ("seg_f1", "pixel_aupro_low", "pixel_aupro"):
        assert 0.0 <= result.metrics[key] <= 1.0, key
