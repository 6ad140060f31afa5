"""Mid-training checkpoints: a job stopped after a checkpoint and resumed from it ends with the
same numbers, bit for bit on the CPU, as one that ran through; the blob holds no pickle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from memseg import job as job_module
from memseg.checkpoint import TrainCheckpoint
from memseg.config import JobConfig
from memseg.data.synthetic import generate
from memseg.profiles import profile
from memseg.result import JobResult, Progress


def tiny(data_root: Path, **changes) -> JobConfig:
    values = profile("tiny") | {"category": "bottle", "data_root": str(data_root), "dataset": "synthetic", "steps": 6}
    return JobConfig.from_dict(values | changes)


class Stop(Exception):
    """Stands for the node going away right after a checkpoint was handed over."""


@dataclass
class Runs:
    config: JobConfig
    through: JobResult  # no checkpoints at all
    saved: list[bytes]  # what a run that checkpointed every 2 steps handed over before it died at step 4
    resumed: JobResult  # a fresh run given the last of them
    progress: list[Progress]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, categories=("bottle",), image_size=64, n_train=10, n_test_good=3, n_test_defect_per_type=2, seed=0)
    config = tiny(root)
    through = job_module.run(config)
    saved: list[bytes] = []

    def keep_then_die(checkpoint: TrainCheckpoint) -> None:
        saved.append(checkpoint.to_bytes())  # what the harness ships to its driver
        if checkpoint.step == 4:
            raise Stop

    with pytest.raises(Stop):
        job_module.run(config, on_checkpoint=keep_then_die, checkpoint_every=2)
    progress: list[Progress] = []
    resumed = job_module.run(config, progress.append, resume=TrainCheckpoint.from_bytes(saved[-1]))
    return Runs(config, through, saved, resumed, progress)


def _numbers(result: JobResult) -> tuple:
    return (result.metrics, result.final_loss, [s.score for s in result.image_scores])


@pytest.mark.slow
def test_a_job_resumed_from_its_checkpoint_ends_bit_identical_to_one_that_ran_through(runs: Runs) -> None:
    assert [TrainCheckpoint.from_bytes(b).step for b in runs.saved] == [2, 4]
    # Exact (== on floats, not approx): the checkpoint at step 2 perturbed nothing, and the resumed
    # run replayed steps 5-6 exactly as the run that never stopped.
    assert _numbers(runs.resumed) == _numbers(runs.through)
    assert runs.resumed.extras["resumed_from_step"] == 4 and runs.through.extras["resumed_from_step"] == 0
    train_steps = [p.step for p in runs.progress if p.phase == "train"]
    assert train_steps[0] == 4 and min(train_steps) == 4  # steps 1-4 were not redone
    # The training curve came through the checkpoint: the resumed job's curve covers steps 1-6, and
    # its losses are those of the run that never stopped (step times differ, being times).
    assert runs.through.curves is not None and runs.resumed.curves is not None
    assert runs.resumed.curves.steps == runs.through.curves.steps == (1, 2, 3, 4, 5, 6)
    for name in ("loss", "loss_l1", "loss_focal", "lr"):
        assert runs.resumed.curves.train[name] == runs.through.curves.train[name], name


@pytest.mark.slow
def test_a_checkpoint_resumes_only_its_own_job_and_is_safetensors_without_pickle(runs: Runs) -> None:
    blob = runs.saved[-1]
    header_size = int.from_bytes(blob[:8], "little")
    assert blob[8:9] == b"{" and b"\x80\x04" not in blob[: 8 + header_size]  # a JSON header, no pickle
    checkpoint = TrainCheckpoint.from_bytes(blob)
    assert checkpoint.job_id == runs.config.job_id and checkpoint.step == 4
    keys = set(checkpoint.tensors)
    assert {"rng.torch", "rng.gen.sampler", "rng.gen.simulation"} <= keys
    assert any(k.startswith("optim.") for k in keys) and not any(k.startswith("model.memory_") for k in keys)
    assert isinstance(checkpoint.meta["scheduler"]["last_epoch"], int) and checkpoint.meta["train_s"] > 0
    with pytest.raises(ValueError, match="not of"):
        job_module.run(runs.config.replace(seed=1), resume=checkpoint)
    with pytest.raises(ValueError, match="outside"):
        job_module.run(runs.config.replace(steps=4), resume=TrainCheckpoint(runs.config.replace(steps=4).job_id, 4, {}, {}))
    with pytest.raises(ValueError, match="not a memseg training checkpoint"):
        TrainCheckpoint.from_bytes(b"\x00" * 64)
    assert torch.equal(checkpoint.tensors["rng.torch"], TrainCheckpoint.from_bytes(blob).tensors["rng.torch"])
