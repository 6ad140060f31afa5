"""One whole job on generated data: it learns, it is deterministic, it fails loudly, it saves."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import pytest
import torch

import memseg
from memseg import job as job_module
from memseg import loss as loss_module
from memseg import train_step as train_step_module
from memseg.ablations import ABLATIONS
from memseg.artefacts import load_model
from memseg.build import build_model
from memseg.config import JobConfig
from memseg.data.synthetic import generate
from memseg.profiles import profile
from memseg.result import JobResult, Progress
from memseg.train_step import StepPath
from tests.learning import LEARNING_CATEGORIES

# Fixed before any tuning: a smoke-profile model on held-out generated defects must be
# clearly better than chance (0.5) at both levels.
MIN_PIXEL_AUROC = 0.80
MIN_IMAGE_AUROC = 0.70


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bottle, 64 px, as small as the tiny jobs allow: 4 memory images, 8 to train on, and 10 test
    images with both labels (the learning test's larger set is tests/learning.py's)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, categories=("bottle",), image_size=64, n_train=12, n_test_good=4, n_test_defect_per_type=2, seed=0)
    return root


def tiny(data_root: Path, **changes) -> JobConfig:
    values = profile("tiny") | {"category": "bottle", "data_root": str(data_root), "dataset": "synthetic", "device": "cpu"}
    return JobConfig.from_dict(values | changes)


@dataclasses.dataclass(frozen=True)
class TinyRun:
    result: JobResult
    events: tuple[Progress, ...]


@pytest.fixture(scope="module")
def full_tiny(data_root: Path) -> TinyRun:
    """One tiny job and its progress events, read by every test that only looks at a finished run."""
    events: list[Progress] = []
    result = job_module.run(tiny(data_root), on_progress=events.append)
    return TinyRun(result, tuple(events))


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.parametrize("category", LEARNING_CATEGORIES)
def test_smoke_profile_learns_held_out_defects(learning_runs: dict[str, dict[str, float]], category: str) -> None:
    """Held-out generated defects, one smoke-profile job per category at one torch thread, computed
    in the background while the rest of the suite runs (tests/learning.py)."""
    metrics = learning_runs[category]
    print(f"{category}: {metrics}")  # the measured values (pytest -s shows them)
    assert metrics["pixel_auroc"] >= MIN_PIXEL_AUROC, metrics
    assert metrics["image_auroc"] >= MIN_IMAGE_AUROC, metrics


def test_same_config_and_seed_on_cpu_give_bit_identical_numbers_other_seed_other_numbers(
    data_root: Path, full_tiny: TinyRun
) -> None:
    """The determinism guarantee of docs/results.md ("Determinism"): on the CPU a job is a pure function of its config."""
    first = full_tiny.result
    second = job_module.run(tiny(data_root))
    other = job_module.run(tiny(data_root, seed=1))
    assert first.metrics == second.metrics  # exact equality of every float, not approximately
    assert [s.score for s in first.image_scores] == [s.score for s in second.image_scores]
    assert first.final_loss == second.final_loss
    assert [s.score for s in first.image_scores] != pytest.approx([s.score for s in other.image_scores], abs=1e-6)


def test_result_carries_scores_timings_and_environment(data_root: Path, full_tiny: TinyRun) -> None:
    result = full_tiny.result
    assert result.job_id == tiny(data_root).job_id
    labels = [s.label for s in result.image_scores]
    assert 0 in labels and 1 in labels
    assert all(s.defect_type == "good" for s in result.image_scores if s.label == 0)
    assert set(result.metrics) >= {"image_auroc", "pixel_auroc", "pixel_f1", "pixel_f1_threshold", "pixel_aupro"}
    assert all(0.0 <= result.metrics[k] <= 1.0 for k in ("image_auroc", "pixel_auroc", "pixel_f1", "pixel_aupro"))
    for key in ("train_s", "eval_s", "infer_images_per_s", "train_steps_per_s", "sim_images_per_s", "peak_mem_mb"):
        assert result.timings[key] > 0, key
    assert result.environment["torch"] == torch.__version__
    assert result.environment["device"] == "cpu"
    assert result.environment["revision"] == str(memseg.REVISION) and result.environment["package_version"]
    assert result.environment["git_dirty"] in ("true", "false", "")  # "" only outside a git checkout
    assert math.isfinite(result.final_loss)


def test_progress_reports_every_phase_in_order(full_tiny: TinyRun) -> None:
    events = full_tiny.events
    phases = [e.phase for e in events]
    assert phases.index("load") < phases.index("memory") < phases.index("train") < phases.index("eval")
    train = [e for e in events if e.phase == "train"]
    assert [e.step for e in train] == list(range(1, 5))  # tiny profile logs every step
    assert all(e.loss is not None and math.isfinite(e.loss) for e in train)


def test_non_finite_loss_stops_the_job_with_its_step(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_loss = loss_module.memseg_loss
    calls = {"n": 0}

    def loss_that_diverges_at_step_2(*args, **kwargs):
        total, parts = real_loss(*args, **kwargs)
        calls["n"] += 1
        return (total * math.nan if calls["n"] == 3 else total), parts

    monkeypatch.setattr(loss_module, "memseg_loss", loss_that_diverges_at_step_2)
    with pytest.raises(job_module.NonFiniteLossError, match="step 2 of 4"):
        job_module.run(tiny(data_root, log_every=100))


def test_too_few_training_images_for_the_memory_bank_is_an_error(data_root: Path) -> None:
    with pytest.raises(ValueError, match="memory bank needs 500"):
        job_module.run(tiny(data_root, memory_size=500))


def test_memory_is_the_first_n_sorted_training_images_and_is_held_out(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from memseg.data.loading import load_category
    from memseg.model import MemSeg

    seen: dict[str, torch.Tensor] = {}
    real_fill, real_train = MemSeg.fill_memory, job_module.train_model

    def fill(self, images, *args, **kwargs):
        seen["memory"] = images.clone()
        return real_fill(self, images, *args, **kwargs)

    def train(model, simulator, train_images, *args, **kwargs):
        seen["train"] = train_images.clone()
        return real_train(model, simulator, train_images, *args, **kwargs)

    monkeypatch.setattr(MemSeg, "fill_memory", fill)
    monkeypatch.setattr(job_module, "train_model", train)
    job_module.run(tiny(data_root, seed=5))
    data = load_category("synthetic", data_root, "bottle", 64)
    assert list(data.train_paths) == sorted(data.train_paths, key=lambda p: Path(p).name)
    assert torch.equal(seen["memory"], data.train_images[:4].float() / 255)  # tiny profile: memory_size 4
    assert torch.equal(seen["train"], data.train_images[4:])


def test_saved_model_reloads_and_predicts_the_same_maps(data_root: Path, tmp_path: Path) -> None:
    config = tiny(data_root, out_dir=str(tmp_path))
    result = job_module.run(config)
    assert result.artefacts_dir is not None
    model_dir = Path(result.artefacts_dir)
    assert model_dir == tmp_path / config.job_id
    scores = json.loads((model_dir / "scores.json").read_text())
    assert len(scores["images"]) == len(result.image_scores)

    model, loaded_config = load_model(model_dir)
    assert loaded_config == config
    from memseg.data.loading import load_category
    from memseg.metrics import image_scores

    data = load_category("synthetic", data_root, "bottle", config.image_size)
    with torch.no_grad():
        maps = model.anomaly_map(model(data.test_images.float() / 255))
    reloaded = image_scores(maps, top_k=config.top_k)
    assert reloaded.tolist() == pytest.approx([s.score for s in result.image_scores], abs=1e-5)


def test_a_model_saved_before_revision_3_loads_with_its_one_encoder(tmp_path: Path) -> None:
    """Revision 2 saved one encoder whatever the ablation (what frozen_bn builds now): such a model
    directory still loads, as that network, and predicts what it predicted."""
    from safetensors.torch import save_file

    from memseg import artefacts

    config = JobConfig(category="bottle", image_size=64, memory_size=4, backbone_weights="none")
    torch.manual_seed(0)
    old = build_model(config, segment_encoder=False)
    old.fill_memory(torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    save_file({k: v.contiguous() for k, v in old.state_dict().items()}, str(tmp_path / artefacts.WEIGHTS))
    (tmp_path / artefacts.CONFIG).write_text(config.to_json())
    model, loaded = load_model(tmp_path)
    assert loaded == config and model.segment_encoder is None
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(images), old.eval()(images))


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    factors = [train_step_module.lr_factor(step, warmup=10, total=100) for step in range(100)]
    assert factors[0] == pytest.approx(0.1)
    assert factors[9] == pytest.approx(1.0)
    assert max(factors) == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] < 0.01


def test_the_official_schedule_is_one_cosine_over_2701_steps_stepped_as_the_official_code_steps_it() -> None:
    """The paper profile's optimizer and schedule, built by the code train_model builds them with, give
    at every step the lr of the official setup: SGD + CosineAnnealingWarmRestarts(T_0=2701) with
    `scheduler.step(step)` after each step (the CutPaste loop the official code descends from)."""
    config = JobConfig.from_dict(profile("paper") | {"category": "bottle"})
    assert (config.optimizer, config.lr, config.momentum, config.weight_decay) == ("sgd", 0.04, 0.9, 3e-5)
    assert (config.schedule, config.steps, config.batch_size, config.anomaly_ratio) == ("cosine_restart", 2701, 8, 0.5)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = train_step_module.make_optimizer(
        [param], config.optimizer, config.lr, config.weight_decay, torch.device("cpu"), StepPath("eager"), config.momentum
    )
    assert isinstance(optimizer, torch.optim.SGD)
    assert (optimizer.defaults["momentum"], optimizer.defaults["weight_decay"]) == (0.9, 3e-5)
    scheduler = train_step_module.make_scheduler(optimizer, config)
    official_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.04, momentum=0.9, weight_decay=3e-5)
    official = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(official_optimizer, T_0=2701)
    ours, theirs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scheduler.step(epoch) is deprecated, and what the official loop calls
        for step in range(2704):
            ours.append(optimizer.param_groups[0]["lr"])
            theirs.append(official_optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            official_optimizer.step()
            official.step(step)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-18)
    assert ours[0] == 0.04 and ours[1] == 0.04  # scheduler.step(0) after step 0 sets the start value again
    assert ours[1350] == pytest.approx(0.020035, abs=1e-6)  # half way: 0.04 (1 + cos(pi 1349 / 2701)) / 2
    assert 0 < ours[2700] < 1e-7  # the last step of the run: 0.04 (1 + cos(pi 2699 / 2701)) / 2 = 5.4e-8
    assert ours[2701] < 1e-7 and ours[2702] == pytest.approx(0.04)  # beyond the run: the restart


@pytest.mark.parametrize("ablation", [name for name in ABLATIONS if name != "full"])
def test_every_ablation_runs_end_to_end_and_changes_the_numbers(data_root: Path, full_tiny: TinyRun, ablation: str) -> None:
    ablated = job_module.run(tiny(data_root, ablation=ablation))
    reference = full_tiny.result
    assert ablated.config.ablation == ablation and ablated.job_id != reference.job_id
    assert all(math.isfinite(ablated.metrics[k]) for k in ("image_auroc", "pixel_auroc", "pixel_aupro"))
    # Same seed, same data: only the ablated part differs, and it must make a difference.
    assert [s.score for s in ablated.image_scores] != pytest.approx([s.score for s in reference.image_scores], abs=1e-6)
