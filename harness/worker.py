"""What runs on the Ray workers: the job actor, the data check task and the synthetic-data
preparation. Kept apart from the driver so a worker imports only this (no pandas, no pyarrow):
every job starts a fresh worker process, and its start-up time is the harness's overhead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import socket
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from harness.checkpoints import CheckpointPlan, job_kwargs
from memseg.config import JobConfig, JobResult, Progress

SYNTHETIC_FN = "memseg.data.synthetic:ensure_synthetic"


@dataclass(frozen=True)
class SyntheticData:
    """The generated data set the jobs read: made on each node that needs it, once."""

    root: str
    image_size: int
    seed: int = 0


@dataclass(frozen=True)
class JobFailure:
    """What an actor returns when the job raised: the sweep records it and goes on."""

    error: str
    traceback: str


def resolve_callable(path: str) -> Callable[..., Any]:
    """The function at "pkg.module:function" or "pkg.module.function"."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path like 'memseg.job.run' or 'pkg.module:function'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r} (from {path!r})") from None


def short_error(err: BaseException, limit: int = 500) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes on one node (actors preparing the same data)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_synthetic(data: SyntheticData) -> Path:
    """Generate the synthetic data set at `data.root` unless it is already there. Safe to call
    from several processes at once on one node."""
    root = Path(data.root)
    ensure = resolve_callable(SYNTHETIC_FN)
    with _file_lock(root.parent / f".{root.name}.lock"):
        return Path(ensure(root, data.image_size, data.seed))


def check_data_here(
    check_path: str,
    groups: Sequence[tuple[str, str | None, tuple[str, ...]]],
    synthetic: SyntheticData | None,
    job_files: JobFiles | None = None,
) -> tuple[list[str], list[str]]:
    """Run the data check (and the check of `job_files`) in this process: the problems found and
    the files ignored on purpose (stray files such as .DS_Store), one line each."""
    if synthetic is not None:
        try:
            prepare_synthetic(synthetic)
        except (ValueError, OSError) as err:  # DataError is a ValueError
            return [f"generating the synthetic data set at {synthetic.root} failed: {err}"], []
    check = resolve_callable(check_path)
    problems: list[str] = []
    ignored: list[str] = []
    for kind, root, categories in groups:
        if root is None:
            problems.append(f"{kind} data: no data root given (--data-root)")
            continue
        try:
            report = check(kind, Path(root), list(categories))
        except (ValueError, OSError) as err:  # memseg.data.types.DataError is a ValueError
            problems.append(str(err))
            continue
        ignored += list(getattr(report, "warnings", None) or ())  # a ValidationReport's skipped files
    return problems + check_job_files(job_files or JobFiles()), ignored


@dataclass(frozen=True)
class JobFiles:
    """Files the jobs read besides the data set: texture folders and backbone weights files."""

    texture_dirs: tuple[str, ...] = ()
    weights_files: tuple[str, ...] = ()


def check_job_files(files: JobFiles) -> list[str]:
    """Each texture folder must hold a readable image and each weights file must load as a
    ResNet18 state dict (weights only, nothing unpickled). Checked once before the sweep, since
    otherwise every job would spend its start-up and then fail the same way."""
    problems = []
    if files.texture_dirs:
        from memseg.data.textures import load_texture_folder

        for folder in files.texture_dirs:
            try:
                load_texture_folder(Path(folder), 32, max_images=1)
            except (ValueError, OSError) as err:  # DataError is a ValueError
                problems.append(str(err))
    if files.weights_files:
        from memseg.backbone import create_encoder

        for path in files.weights_files:
            try:
                create_encoder(path)
            except (ValueError, OSError) as err:
                problems.append(str(err))
    return problems


@dataclass(frozen=True)
class NodeDataReport:
    """What the data check found on one node, and a fingerprint of the data there, so the driver
    can tell nodes whose data differ (another version of the data set, a partial copy)."""

    node: str  # "127.0.0.1 (node 1a2b3c4d, host h)": how the user finds the machine
    problems: list[str]
    ignored: list[str]
    fingerprint: dict[str, str]


def data_fingerprint(groups: Sequence[tuple[str, str | None, tuple[str, ...]]]) -> dict[str, str]:
    """Per "<root>/<category>": its file count and a digest of the relative paths and sizes of
    its files. Sizes, not contents: cheap on every node (stat only), and enough to tell a partial
    or different copy."""
    found = {}
    for _kind, root, categories in groups:
        if root is None:
            continue
        for category in categories:
            folder = Path(root) / category
            files = sorted(
                (str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file()
            ) if folder.is_dir() else []
            digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:12]
            found[str(folder)] = f"{len(files)} files, digest {digest}"
    return found


def describe_node() -> str:
    context = ray.get_runtime_context()
    address = ray.util.get_node_ip_address()
    return f"{address} (node {context.get_node_id()[:8]}, host {socket.gethostname()})"


@ray.remote(num_cpus=0, max_retries=0)
def check_data_task(
    check_path: str,
    groups: Sequence[tuple[str, str | None, tuple[str, ...]]],
    synthetic: SyntheticData | None,
    job_files: JobFiles | None = None,
) -> NodeDataReport:
    problems, ignored = check_data_here(check_path, groups, synthetic, job_files)
    return NodeDataReport(describe_node(), problems, ignored, data_fingerprint(groups))


@ray.remote(max_restarts=0, max_task_retries=0, max_concurrency=2)
class JobActor:
    """Runs one job. Threaded (max_concurrency=2) so that `latest` answers while `run` works."""

    def __init__(self, num_threads: int) -> None:  # cheap: no torch here, the job imports it
        self._num_threads = num_threads
        self._latest: Progress | None = None
        self._checkpoint: tuple[int, bytes] | None = None  # the newest, until the driver fetches it

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def latest(self) -> Progress | None:
        return self._latest

    def _report(self, progress: Progress) -> None:
        self._latest = progress  # one attribute store: atomic, read by `latest` on the other thread

    def _save(self, checkpoint: Any) -> None:
        """The job's on_checkpoint: serialise here (in the job's thread, so the job pays for it) and
        keep only the newest until the driver takes it."""
        self._checkpoint = (checkpoint.step, checkpoint.to_bytes())

    def checkpoint_after(self, step: int) -> tuple[int, bytes] | None:
        """The newest checkpoint if it is past `step` (what the driver has), else None."""
        held = self._checkpoint
        return held if held is not None and held[0] > step else None

    def run(
        self, job_fn: str, config: JobConfig, synthetic: SyntheticData | None, plan: CheckpointPlan | None = None
    ) -> JobResult | JobFailure:
        try:
            fn = resolve_callable(job_fn)
            if synthetic is not None:
                prepare_synthetic(synthetic)  # a node the autoscaler added after the preflight
            if "torch" in sys.modules:  # the job's module imported torch: give it our CPU share
                sys.modules["torch"].set_num_threads(self._num_threads)
            result = fn(config, self._report, **job_kwargs(fn, plan, self._save))
            if not isinstance(result, JobResult):
                raise TypeError(f"{job_fn} returned {type(result).__name__}, expected memseg.config.JobResult")
            return result
        except Exception as err:  # the job's own failure: recorded as failed, never retried
            return JobFailure(error=short_error(err), traceback=_traceback_summary(err))


def _traceback_summary(err: BaseException, frames: int = 6) -> str:
    """The last frames and the error: enough to find the line, small enough for a table cell."""
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    head, body, tail = lines[:1], lines[1:-1], lines[-1:]
    return "".join(head + body[-frames:] + tail)[-4000:]
