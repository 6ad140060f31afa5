"""The driver's side of checkpoints: where they live, atomic writes, the step read from the
header alone, unreadable files named, the default interval, and which job functions take them."""

from __future__ import annotations

import pytest
import torch

from harness import checkpoints, paths
from memseg import job as job_module
from memseg.checkpoint import TrainCheckpoint
from tests.harness import fakes


def _blob(step: int) -> bytes:
    return TrainCheckpoint("bottle-full-s0-0123456789", step, {"counter": torch.tensor(step)}, {"train_s": 1.0}).to_bytes()


def test_a_checkpoint_is_written_atomically_and_its_step_read_from_the_header(tmp_path):
    path = paths.checkpoint_path(tmp_path, "sw", "bottle-full-s0-0123456789")
    assert path == tmp_path / "sw" / "checkpoints" / "bottle-full-s0-0123456789.safetensors"
    checkpoints.write(path, _blob(500))
    checkpoints.write(path, _blob(1000))  # replaces the older one
    assert checkpoints.step_of(path.read_bytes()) == 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    plan, step = checkpoints.load_plan(tmp_path, "sw", "bottle-full-s0-0123456789", every=500)
    assert step == 1000 and plan.resume == path.read_bytes() and plan.every == 500 and plan.resume_path == str(path)
    checkpoints.delete(tmp_path, "sw", "bottle-full-s0-0123456789")
    assert not path.exists()
    assert checkpoints.load_plan(tmp_path, "sw", "bottle-full-s0-0123456789", every=0) == (checkpoints.CheckpointPlan(0), 0)


def test_an_unreadable_checkpoint_is_named(tmp_path):
    path = paths.checkpoint_path(tmp_path, "sw", "j")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(checkpoints.UnreadableCheckpoint, match=str(path)):
        checkpoints.load_plan(tmp_path, "sw", "j", every=5)
    bad = checkpoints.CheckpointPlan(5, b"junk", str(path))
    with pytest.raises(ValueError, match=f"checkpoint {path}.*delete it"):
        checkpoints.job_kwargs(job_module.run, bad, lambda _c: None)


def test_the_paper_profile_checkpoints_a_tenth_of_its_steps_and_the_cpu_profiles_never():
    assert checkpoints.default_every("paper", 5000) == 500
    assert checkpoints.default_every("paper", 1000) == 100
    assert checkpoints.default_every("smoke", 150) == 0 and checkpoints.default_every("tiny", 4) == 0


def test_checkpoint_arguments_go_only_to_job_functions_that_take_them():
    assert checkpoints.accepts_checkpoints(job_module.run) and checkpoints.accepts_checkpoints(fakes.checkpointing_job)
    assert not checkpoints.accepts_checkpoints(fakes.quick_job)
    plan = checkpoints.CheckpointPlan(5, _blob(10), "x")
    assert checkpoints.job_kwargs(fakes.quick_job, plan, print) == {}
    kwargs = checkpoints.job_kwargs(job_module.run, plan, print)
    assert kwargs["checkpoint_every"] == 5 and kwargs["resume"].step == 10 and kwargs["on_checkpoint"] is print
    assert checkpoints.job_kwargs(job_module.run, checkpoints.CheckpointPlan(0), print) == {}
