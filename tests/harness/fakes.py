"""Fake job functions with the contract of `memseg.job.run`, for driving the harness fast.

They are imported by path inside Ray workers ("tests.harness.fakes:quick_job"), so they must stay
light: no torch, no data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from memseg.config import JobConfig
from memseg.curves import TrainingCurves
from memseg.data.types import DataError
from memseg.result import ImageScore, JobResult, Progress


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _unit(text: str) -> float:
    """A stable number in [0, 1) from a string."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


def fake_result(config: JobConfig, started_at: str, train_s: float = 0.0) -> JobResult:
    """Metrics that depend only on the config (category, seed, ablation)."""
    image = 0.8 + 0.2 * _unit(f"{config.category}-{config.ablation}-{config.seed}")
    scores = tuple(
        ImageScore(path=f"{config.category}/test/{kind}/{i:03d}.png", label=int(kind != "good"), defect_type=kind, score=float(i))
        for i, kind in enumerate(("good", "good", "crack"))
    )
    return JobResult(
        job_id=config.job_id,
        config=config,
        metrics={
            "image_auroc": image,
            "pixel_auroc": 0.9 + 0.1 * _unit(config.job_id),
            "pixel_f1": 0.5,
            "pixel_f1_threshold": 0.4,
            "pixel_aupro": 0.7,
        },
        image_scores=scores,
        # No sim_images_per_s and no peak_mem_mb: the store must turn missing keys into NaN.
        timings={"train_s": train_s, "eval_s": 0.01, "infer_images_per_s": 100.0, "train_steps_per_s": 10.0},
        environment={
            "torch": "fake",
            "cuda": "",
            "device": "cpu",
            "device_name": "fake",
            "node": os.uname().nodename,
            "python": "3",
            "git_sha": "",
            "timm": "fake",
        },
        artefacts_dir=None,
        started_at=started_at,
        finished_at=_now(),
        final_loss=0.25,
        extras={"pid": os.getpid()},
    )


def quick_job(config: JobConfig, on_progress=None) -> JobResult:
    """Reports a few progress steps over about half a second, then returns a valid result."""
    report = on_progress or (lambda _p: None)
    started = _now()
    report(Progress("load", 0, 1))
    for step in range(1, 6):
        time.sleep(0.1)
        report(Progress("train", step, 5, loss=1.0 / step))
    return fake_result(config, started, train_s=0.5)


def curves_job(config: JobConfig, on_progress=None) -> JobResult:
    """As quick_job, with a training curve and a validation curve."""
    return with_curves(quick_job(config, on_progress))


def instant_curves_job(config: JobConfig, on_progress=None) -> JobResult:
    """A result with curves at once (no progress, no sleep): a run that only has to re-run a job."""
    return with_curves(fake_result(config, _now()))


def with_curves(result: JobResult) -> JobResult:
    """`result` with a five-step training curve and one validation point."""
    losses = tuple(1.0 / step for step in range(1, 6))
    curves = TrainingCurves(
        steps=(1, 2, 3, 4, 5),
        train={"loss": losses, "loss_l1": losses, "loss_focal": losses, "lr": (1e-3,) * 5, "step_time_s": (0.1,) * 5},
        val_steps=(5,),
        validation={"image_auroc": (0.75,), "pixel_auroc": (0.8,), "loss": (0.5,)},
    )
    return dataclasses.replace(result, curves=curves)


def noop_job(config: JobConfig, on_progress=None) -> JobResult:
    """Returns at once: what is left of a sweep's wall time is the harness's overhead."""
    return fake_result(config, _now())


def sleepy_job(config: JobConfig, on_progress=None) -> JobResult:
    """Reports progress every 50 ms for `config.steps` steps, so a test can kill it mid-run."""
    report = on_progress or (lambda _p: None)
    started = _now()
    for step in range(1, config.steps + 1):
        time.sleep(0.05)
        report(Progress("train", step, config.steps, loss=0.5))
    return fake_result(config, started, train_s=0.05 * config.steps)


def failing_job(config: JobConfig, on_progress=None) -> JobResult:
    raise RuntimeError(f"fake failure in {config.category} seed {config.seed}")


def picky_job(config: JobConfig, on_progress=None) -> JobResult:
    """Fails for the carpet category only, like a job that diverges; the rest succeed."""
    if config.category == "carpet":
        raise FloatingPointError("loss became non-finite at step 3 of 4")
    return quick_job(config, on_progress)


LOG_ENV = "MEMSEG_FAKE_LOG"
GATE_ENV = "MEMSEG_FAKE_GATE"


def _log(line: str) -> None:
    """One line appended to the file named by $MEMSEG_FAKE_LOG (O_APPEND: lines from several
    processes never interleave), so a test sees every start and end of every attempt."""
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\n")


def logged_job(config: JobConfig, on_progress=None) -> JobResult:
    """sleepy_job that logs "start <job_id> <pid>" and "end <job_id> <pid>": the test counts
    how often each job really ran, across driver restarts. While the file named by
    $MEMSEG_FAKE_GATE exists, it does not end (the test decides when jobs may finish)."""
    _log(f"start {config.job_id} {os.getpid()}")
    result = sleepy_job(config, on_progress)
    gate = os.environ.get(GATE_ENV)
    while gate and os.path.exists(gate):
        time.sleep(0.05)
    _log(f"end {config.job_id} {os.getpid()}")
    return result


def mixed_job(config: JobConfig, on_progress=None) -> JobResult:
    """bottle runs out of CUDA memory, grid hits a bug, every other category succeeds."""
    if config.category == "bottle":
        import torch  # only here: the other fakes stay light

        raise torch.cuda.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity; 78.90 GiB already allocated)"
        )
    if config.category == "grid":
        return _buggy_helper(config)
    return quick_job(config, on_progress)


def _buggy_helper(config: JobConfig) -> JobResult:
    raise KeyError(f"no such layer in {config.category}")


def wrong_type_job(config: JobConfig, on_progress=None) -> dict:
    return {"not": "a JobResult"}


def fake_check(kind: str, root: Path, categories: list[str]) -> None:
    """Like memseg.data.loading.check: every category needs a folder under `root`."""
    problems = [f"{root / c}: missing category folder" for c in categories if not (Path(root) / c).is_dir()]
    if problems:
        raise DataError(f"{kind} data at {root} is incomplete", problems)


def checkpointing_job(
    config: JobConfig, on_progress=None, *, on_checkpoint=None, checkpoint_every: int = 0, resume=None
) -> JobResult:
    """sleepy_job with memseg.job.run's checkpoint contract: every `checkpoint_every` steps it hands a
    (tiny) TrainCheckpoint over, and given one as `resume` it starts after that step. Logs
    "start <job_id> <pid> <node_id> <first_step>" and "step <job_id> <pid> <step>" so a test sees
    where each attempt ran and which steps it redid. Honours $MEMSEG_FAKE_GATE like logged_job, and
    also holds while "$MEMSEG_FAKE_GATE-<category>" exists (a gate for one category's job)."""
    import ray
    import torch

    from memseg.checkpoint import TrainCheckpoint

    report = on_progress or (lambda _p: None)
    started = _now()
    first = 0
    if resume is not None:
        first = int(resume.tensors["counter"].item())
        assert first == resume.step, "the checkpoint's state and step disagree"
    _log(f"start {config.job_id} {os.getpid()} {ray.get_runtime_context().get_node_id()} {first}")
    gate = os.environ.get(GATE_ENV)
    gates = [gate, f"{gate}-{config.category}"] if gate else []
    for step in range(first + 1, config.steps + 1):
        time.sleep(0.05)
        _log(f"step {config.job_id} {os.getpid()} {step}")
        report(Progress("train", step, config.steps, loss=0.5))
        if on_checkpoint is not None and checkpoint_every and step % checkpoint_every == 0 and step < config.steps:
            on_checkpoint(TrainCheckpoint(config.job_id, step, {"counter": torch.tensor(step)}, {"train_s": 0.05 * step}))
        while any(os.path.exists(g) for g in gates) and step >= config.steps // 2 + 2:  # hold 2 steps past mid-run
            time.sleep(0.05)
    _log(f"end {config.job_id} {os.getpid()}")
    return fake_result(config, started, train_s=0.05 * config.steps)


def rendezvous_job(config: JobConfig, on_progress=None) -> JobResult:
    """Proves jobs run at the same time: each writes a file under `config.data_root` and waits
    (up to 60 s) until `config.steps` jobs have written theirs, then records the GPU ids its actor
    was given. Jobs that could not run together time out and fail."""
    import ray  # the actor's process has it

    started = _now()
    folder = Path(config.data_root or ".")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{config.job_id}.here").write_text(started)
    deadline = time.monotonic() + 60
    while len(list(folder.glob("*.here"))) < config.steps:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(folder.glob('*.here')))} of {config.steps} jobs ran at once")
        time.sleep(0.05)
    return dataclasses.replace(fake_result(config, started), extras={"gpu_ids": [str(g) for g in ray.get_gpu_ids()]})
