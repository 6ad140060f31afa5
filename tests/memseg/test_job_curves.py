"""What a job records while it trains: its training curve at every log interval, and
with val_every a validation curve on held-out training images that never reaches the test set,
never changes the training and never picks the reported model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from memseg import job as job_module
from memseg import train_step as train_step_module
from memseg.config import JobConfig
from memseg.data.synthetic import generate
from memseg.profiles import profile
from memseg.result import Progress
from tests.memseg.watched import Watched, WatchedRun
from tests.memseg.watched import watched_run as run_watched


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, categories=("bottle",), image_size=64, n_train=20, n_test_good=3, n_test_defect_per_type=2, seed=0)
    return root


def tiny(data_root: Path, **changes: Any) -> JobConfig:
    values = profile("tiny") | {"category": "bottle", "data_root": str(data_root), "dataset": "synthetic", "steps": 6}
    return JobConfig.from_dict(values | changes)


def test_the_training_curve_has_every_series_at_every_log_interval(data_root: Path) -> None:
    events: list[Progress] = []
    config = tiny(data_root, log_every=2)
    result = job_module.run(config, on_progress=events.append)
    curves = result.curves
    assert curves is not None and curves.steps == (2, 4, 6) and not curves.has_validation
    assert set(curves.train) == {"loss", "loss_l1", "loss_focal", "lr", "step_time_s"}
    assert list(curves.train["loss"]) == [e.loss for e in events if e.phase == "train"]  # what the progress said
    assert curves.train["loss"][-1] == result.final_loss
    for total, l1, focal in zip(curves.train["loss"], curves.train["loss_l1"], curves.train["loss_focal"]):
        assert total == pytest.approx(config.l1_weight * l1 + config.focal_weight * focal, rel=1e-5)
    # the lr each logged step ran at: the schedule's value at that step's index (step 2 ran index 1)
    factors = [
        train_step_module.make_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), config).lr_lambdas[0](
            s - 1
        )
        for s in curves.steps
    ]
    assert list(curves.train["lr"]) == pytest.approx([config.lr * f for f in factors], rel=1e-12)
    assert all(t > 0 for t in curves.train["step_time_s"])
    assert "validation_rule" not in result.extras and result.timings["validation_s"] == 0.0


@pytest.fixture(scope="module")
def watched_run(data_root: Path) -> WatchedRun:
    """One job, read by two tests: validation every 2 steps on 4 held-out images, with its test
    tensors Watched (tests/memseg/watched.py)."""
    return run_watched(tiny(data_root, val_every=2, val_images=4, log_every=1))


def test_the_test_set_is_not_touched_until_training_has_ended(watched_run: WatchedRun) -> None:
    """No operation on a test tensor may come before the last training step's event, validation
    evaluations included."""
    events = watched_run.events
    last_train = max(i for i, e in enumerate(events) if e.phase == "train") + 1
    assert watched_run.seen_at, "the test set was never read: the watch is broken"
    assert min(watched_run.seen_at) >= last_train, (min(watched_run.seen_at), last_train)
    assert watched_run.result.curves is not None and watched_run.result.curves.val_steps == (2, 4, 6)


def test_validation_watches_only_the_reported_model_is_the_final_one(data_root: Path, watched_run: WatchedRun) -> None:
    """Evaluating the held-out set every 2 steps or only after the last step: the same training (every
    loss), the same final model and so the same test metrics, bit for bit. Validation changes no
    weight and no random stream, and no checkpoint is chosen by it."""
    often = watched_run.result
    once = job_module.run(tiny(data_root, val_every=1000, val_images=4))
    assert often.config == tiny(data_root, val_every=2, val_images=4)  # the tiny profile logs every step
    assert often.curves is not None and once.curves is not None
    assert often.curves.val_steps == (2, 4, 6) and once.curves.val_steps == (6,)
    assert often.curves.train["loss"] == once.curves.train["loss"]
    assert often.metrics == once.metrics and often.final_loss == once.final_loss
    assert [s.score for s in often.image_scores] == [s.score for s in once.image_scores]
    # the last validation point is of the final model in both runs
    assert often.curves.validation["loss"][-1] == once.curves.validation["loss"][-1]
    for name in ("image_auroc", "pixel_auroc", "loss"):
        assert all(math.isfinite(v) for v in often.curves.validation[name]), name
    assert "last 4 normal training images" in often.extras["validation_rule"]
    assert often.timings["validation_s"] > 0


def test_the_held_out_images_leave_training_and_change_the_id(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, torch.Tensor] = {}
    real_train = job_module.train_model

    def train(model, simulator, train_images, *args, **kwargs):
        seen["train"] = train_images.clone()
        return real_train(model, simulator, train_images, *args, **kwargs)

    monkeypatch.setattr(job_module, "train_model", train)
    job_module.run(tiny(data_root, val_every=3, val_images=4))
    with_validation = seen["train"]
    job_module.run(tiny(data_root))
    assert torch.equal(with_validation, seen["train"][:-4])  # the last 4 training images were held out
    assert tiny(data_root).job_id != tiny(data_root, val_every=3).job_id != tiny(data_root, val_every=3, val_images=4).job_id
    assert tiny(data_root).job_id == tiny(data_root, val_images=8).job_id  # defaults stay out of the id


def test_a_search_job_reports_each_validation_point_and_never_reads_the_test_set(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`validate` (what a recipe search runs) hands each validation point on as it is computed, the
    same points its curve keeps, and never reads the test set: no test file is decoded, and the test
    tensors of whichever loader it uses are Watched, with no operation noted."""
    from memseg.data import files as files_module

    opened: list[object] = []
    real_item = files_module._load_test_item

    def noted_item(item, *args, **kwargs):
        opened.append(item)
        return real_item(item, *args, **kwargs)

    def watched(load):
        def load_watched(config: JobConfig):
            data = load(config)
            for name in ("test_images", "test_labels", "test_masks"):
                object.__setattr__(data, name, getattr(data, name).as_subclass(Watched))
            return data

        return load_watched

    monkeypatch.setattr(files_module, "_load_test_item", noted_item)
    monkeypatch.setattr(job_module, "load_data", watched(job_module.load_data))
    monkeypatch.setattr(job_module, "load_train_data", watched(job_module.load_train_data))
    Watched.seen_at, Watched.events = [], []
    points: list[tuple[int, float]] = []
    outcome = job_module.validate(
        tiny(data_root, val_every=2, val_images=4), on_validation=lambda step, point: points.append((step, point.loss))
    )
    assert opened == [], "a search job opened a test file"
    assert Watched.seen_at == [], "a search job operated on a test tensor"
    assert outcome.curves is not None and outcome.curves.val_steps == (2, 4, 6)
    assert points == list(zip(outcome.curves.val_steps, outcome.curves.validation["loss"]))
    job_module.load_data(tiny(data_root))  # the watch works: a job that evaluates opens every test file
    assert len(opened) == 3 + 2 * 3  # 3 good, 2 per defect type
    with pytest.raises(ValueError, match="validation curve"):
        job_module.validate(tiny(data_root))
