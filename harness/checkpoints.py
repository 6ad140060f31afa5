"""Mid-job checkpoints, kept by the driver at `harness.paths.checkpoint_path`
(`<results>/<sweep>/checkpoints/<job_id>.safetensors`).

The job hands its training state to its actor every N steps (memseg.checkpoint.TrainCheckpoint);
the driver fetches it while the job runs and writes it here atomically, so a lost node or a
stopped driver costs at most N steps of each running job, with nothing to configure. A job
launched again (retry, or the same command after Ctrl-C / SIGTERM) starts from its checkpoint;
the checkpoint is deleted once the job's result is committed. The driver treats the blob as bytes
(safetensors, no pickle) and reads only its step from the header.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.paths import checkpoint_path
from harness.progress import CheckpointSaved, Event, JobResumed, Note
from memseg import revision as code_revision
from memseg.atomic import write_atomic

# The paper profile checkpoints about every tenth of its steps; the CPU profiles never (a job
# there is minutes long, and the checkpoint would cost more than it saves).
DEFAULT_FRACTION = 0.1
PROFILES_WITH_CHECKPOINTS = ("paper",)


@dataclass(frozen=True)
class CheckpointPlan:
    """What the actor is told: checkpoint every `every` steps (0: never), and the state to start
    from (`resume`, the bytes of the checkpoint file at `resume_path`) if there is one."""

    every: int = 0
    resume: bytes | None = None
    resume_path: str = ""


def default_every(profile_name: str, steps: int) -> int:
    """Steps between checkpoints when --checkpoint-every is not given."""
    if profile_name not in PROFILES_WITH_CHECKPOINTS or steps < 2:
        return 0
    return max(1, round(steps * DEFAULT_FRACTION))


def write(path: Path, data: bytes) -> float:
    """Write the checkpoint through a temp file, fsync and rename (memseg.atomic): a crash
    mid-write leaves the previous checkpoint (or none), never half of one. Returns the seconds
    it took."""

    def synced(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename makes it the checkpoint

    start = time.perf_counter()
    write_atomic(path, synced)
    return time.perf_counter() - start


def _header(data: bytes) -> dict[str, Any]:
    size = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
    return dict(json.loads(meta["memseg_checkpoint"]))


def step_of(data: bytes) -> int:
    """The training step a checkpoint blob was taken after (from its safetensors JSON header)."""
    return int(_header(data)["step"])


def revision_of(data: bytes) -> int:
    """The revision of the code that wrote a checkpoint blob (LEGACY_REVISION when it records none)."""
    return int(_header(data).get("revision", code_revision.LEGACY_REVISION))


def load_plan(results_dir: str | Path, sweep: str, job_id: str, every: int) -> tuple[CheckpointPlan, int]:
    """The plan for a job about to launch, and the step it resumes from (0: from scratch). A file
    that is not a readable checkpoint, or one written by another revision of the code, is named
    and ignored: the job then starts from step 0."""
    path = checkpoint_path(results_dir, sweep, job_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return CheckpointPlan(every), 0
    try:
        step, written_at = step_of(data), revision_of(data)
    except (ValueError, KeyError, TypeError) as err:
        raise UnreadableCheckpoint(f"{path} is not a readable checkpoint ({err}); the job starts from step 0") from None
    if written_at != code_revision.REVISION:
        raise UnreadableCheckpoint(
            f"{path} was written at revision {written_at}, this code is revision {code_revision.REVISION}: "
            "not resumed, the job trains from scratch"
        )
    return CheckpointPlan(every, data, str(path)), step


class UnreadableCheckpoint(ValueError):
    """A checkpoint file that cannot be read, or of another revision: reported, then ignored."""


def delete(results_dir: str | Path, sweep: str, job_id: str) -> None:
    """Called once the job's result is committed: its checkpoint has served."""
    checkpoint_path(results_dir, sweep, job_id).unlink(missing_ok=True)


@dataclass
class Keeper:
    """The driver's checkpoint bookkeeping for one sweep: the plan each launch gets, the fetched
    checkpoints it writes, and the counts the sweep's outcome reports."""

    results_dir: Path
    sweep: str
    every: int
    emit: Callable[[Event], None]
    resumed: list[tuple[str, int]] = field(default_factory=list)  # (job_id, step) of resumed launches
    written: int = 0

    def plan(self, job_id: str) -> tuple[CheckpointPlan, int]:
        """Checkpoint every N steps, starting from the job's checkpoint on disk if it has one; an
        unreadable one is named and the job starts from step 0."""
        try:
            return load_plan(self.results_dir, self.sweep, job_id, self.every)
        except UnreadableCheckpoint as err:
            self.emit(Note(f"warning: {err}"))
            return CheckpointPlan(self.every), 0

    def launched(self, job_id: str, attempt: int, step: int) -> None:
        """Record and tell that a launch starts from the checkpoint at `step` (0: from scratch)."""
        if step:
            self.resumed.append((job_id, step))
            self.emit(JobResumed(job_id, attempt, step))

    def keep(self, job_id: str, found: tuple[int, bytes] | None, held_step: int) -> int:
        """Write `found` (what the actor's `checkpoint_after` returned) when it is newer than the
        step on disk; returns the step on disk now."""
        if found is None or found[0] <= held_step:
            return held_step
        step, data = found
        write_s = write(checkpoint_path(self.results_dir, self.sweep, job_id), data)
        self.written += 1
        self.emit(CheckpointSaved(job_id, step, len(data), write_s))
        return step


# --- in the actor ------------------------------------------------------------------------------


def accepts_checkpoints(fn: Callable[..., Any]) -> bool:
    """Whether a job function takes `on_checkpoint`, `checkpoint_every` and `resume` (memseg.job.run
    does; a test's fake job may not)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return all(name in params for name in ("on_checkpoint", "checkpoint_every", "resume"))


def job_kwargs(fn: Callable[..., Any], plan: CheckpointPlan | None, save: Callable[[Any], None]) -> dict[str, Any]:
    """The checkpoint arguments to call `fn` with: none when there is nothing to do or `fn` cannot
    take them; a resume blob that does not parse is an error naming its file."""
    if plan is None or not accepts_checkpoints(fn) or (plan.every <= 0 and plan.resume is None):
        return {}
    from memseg.checkpoint import TrainCheckpoint  # start-up time: torch only where a job checkpoints

    resume = None
    if plan.resume is not None:
        try:
            resume = TrainCheckpoint.from_bytes(plan.resume)
        except ValueError as err:
            raise ValueError(f"checkpoint {plan.resume_path}: {err}; delete it to start the job from step 0") from None
    return {"on_checkpoint": save, "checkpoint_every": plan.every, "resume": resume}
