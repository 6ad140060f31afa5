"""The Ray cluster as the driver sees it: the one owner of the Ray session, the shape of its nodes
(and of those an autoscaler may add), the resources one job asks for, how many fit, and the
check that some node can ever hold one.

Resource sizing (why nothing deadlocks): the driver itself holds no Ray CPU. Each job's actor
holds `num_gpus` (default 1 when the cluster has GPUs, else 0) and `num_cpus` (default: its share
of a GPU node's CPUs, or 1 on a CPU-only cluster, so N cores run N jobs at once).

Ray is imported inside the functions that talk to it, so that the CLI can keep a local cluster
on 127.0.0.1 (an environment variable read when ray is imported) and `status`/`report` never
import it.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import ray_auth
from harness.ray_quiet import quiet_token_notice
from memseg.cli_errors import UserError

# How long a connection to a user's head may take before it is called a failure: Ray's own connect
# retries for 20 s (40 s to a port where something else listens), printing each refusal.
HEAD_TIMEOUT_S = 8.0

# A short path: Ray's socket paths must stay under the 107-byte limit of AF_UNIX.
LOCAL_TEMP_DIR = f"/tmp/memseg-ray-{os.getuid()}"
BOOTSTRAP_CONFIG = Path.home() / "ray_bootstrap_config.yaml"  # written on a head by `ray up`


class PreflightError(UserError, RuntimeError):
    """The sweep cannot start: resources no node has, data that is missing or malformed, a job
    function that does not import. Raised before any job starts."""

    prefix = "preflight failed, no job started:"


@dataclass(frozen=True)
class JobRequest:
    """The resources one job's actor holds."""

    num_cpus: float
    num_gpus: float

    def describe(self) -> str:
        return f"{self.num_gpus:g} GPU and {self.num_cpus:g} CPU per job"


@dataclass(frozen=True)
class NodeShape:
    node_id: str
    hostname: str
    cpus: float
    gpus: float
    is_head: bool
    accelerator: str = ""  # Ray's accelerator type of its GPUs ("H200"), from the resource "accelerator_type:H200"


@dataclass(frozen=True)
class NodeType:
    """A worker type the cluster's autoscaler may start (from the head's bootstrap config)."""

    name: str
    cpus: float
    gpus: float
    max_workers: int
    accelerator: str = ""  # as NodeShape.accelerator, when the launcher config states it


@dataclass(frozen=True)
class Cluster:
    """The alive nodes and the node types an autoscaler may add."""

    nodes: tuple[NodeShape, ...]
    node_types: tuple[NodeType, ...] = ()

    @property
    def gpus(self) -> float:
        """GPUs now plus every GPU the autoscaler may add."""
        return sum(n.gpus for n in self.nodes) + sum(t.gpus * t.max_workers for t in self.node_types)

    def describe(self) -> str:
        text = f"{len(self.nodes)} node(s), {sum(n.cpus for n in self.nodes):g} CPU, {sum(n.gpus for n in self.nodes):g} GPU"
        if self.node_types:
            text += "; autoscaler may add " + ", ".join(f"{t.max_workers} x {t.name}" for t in self.node_types)
        return text


def _shapes(nodes: Sequence[NodeShape], node_types: Sequence[NodeType]) -> list[tuple[float, float]]:
    """(cpus, gpus) of every machine a job could run on: the alive nodes and the autoscaler's types."""
    return [(n.cpus, n.gpus) for n in nodes] + [(t.cpus, t.gpus) for t in node_types]


# ---------------------------------------------------------------------------------------------
# The Ray session


def connect(address: str | None = None) -> bool:
    """Use the Ray session already open in this process, or connect to `address` ("auto", an
    ip:port or ray://) or to $RAY_ADDRESS (set for `ray job submit` entrypoints), or start a local
    one (no dashboard, our own temp dir). Returns True when this call started or connected Ray (so
    the caller shuts it down), False when it reused one."""
    import ray  # start-up time and the loopback setting: see the module docstring

    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": "warning"}
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        ray_auth.use_found_token()
        check_head(target)
        ray.init(address=address or None, **common)
    else:
        with quiet_token_notice():  # our own line replaces it (harness.ray_quiet)
            ray.init(include_dashboard=False, _temp_dir=LOCAL_TEMP_DIR, object_store_memory=1 << 30, **common)
    return True


def check_head(address: str, timeout_s: float = HEAD_TIMEOUT_S) -> None:
    """Raise UserError, one line within `timeout_s`, when the Ray head at `address` (HOST:PORT)
    cannot be reached, does not answer as a Ray head, or refuses this client's authentication.
    Other forms ("auto", "ray://...") are left to Ray, which finds or reaches them itself."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise UserError(
            f"cannot reach a Ray head at {address} ({err.strerror or err}): check --address (the head's IP and the "
            "--port of its `ray start --head`) and that the head is still running"
        ) from None
    failure: list[BaseException] = []
    probe = threading.Thread(target=_ask_head, args=(address, timeout_s, failure), daemon=True)
    with _stderr_silenced():  # Ray's C++ client logs each refusal there; our one line replaces it
        probe.start()
        probe.join(timeout_s)
    if probe.is_alive():
        raise UserError(
            f"something listens at {address} but no Ray head answered within {timeout_s:g} s: --address takes the "
            "head's GCS port (the --port of `ray start --head`, 6379 by default), not the dashboard's"
        )
    if failure:
        import ray.exceptions  # start-up time and the loopback setting: see the module docstring

        problem = failure[0]
        if isinstance(problem, ray.exceptions.AuthenticationError):
            raise UserError(ray_auth.refused(address)) from None
        raise UserError(f"the Ray head at {address} did not answer: {str(problem).splitlines()[0]}") from None


def _ask_head(address: str, timeout_s: float, failure: list[BaseException]) -> None:
    """One authenticated request to the head's GCS (what `ray.init` does first); what it raised goes to `failure`."""
    from ray._raylet import GcsClient  # type: ignore[attr-defined]  # compiled: its stub names only part of it

    try:
        GcsClient(address=address).internal_kv_get(b"memseg-bench-probe", None, timeout=timeout_s)
    except Exception as err:  # handed to check_head, which names it
        failure.append(err)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 (where C++ code writes) to a scratch file for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def session(address: str | None = None) -> Iterator[None]:
    """The Ray session for a `with` block: the one place that opens and closes it. Nested blocks
    reuse the open session; the block that opened it shuts it down."""
    import ray  # start-up time and the loopback setting: see the module docstring

    opened = connect(address)
    try:
        yield
    finally:
        if opened:
            ray.shutdown()


def discover(bootstrap: Path = BOOTSTRAP_CONFIG) -> Cluster:
    """The cluster of the open session: its nodes and the autoscaler's node types."""
    return Cluster(tuple(cluster_nodes()), tuple(autoscaler_node_types(bootstrap)))


def cluster_nodes() -> list[NodeShape]:
    """The alive nodes and their total CPUs and GPUs."""
    import ray  # start-up time and the loopback setting: see the module docstring

    nodes = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources", {})
        nodes.append(
            NodeShape(
                node_id=n["NodeID"],
                hostname=n.get("NodeManagerHostname", ""),
                cpus=float(res.get("CPU", 0.0)),
                gpus=float(res.get("GPU", 0.0)),
                is_head="node:__internal_head__" in res,
                accelerator=accelerator_type(res),
            )
        )
    return nodes


def autoscaler_node_types(path: Path = BOOTSTRAP_CONFIG) -> list[NodeType]:
    """Worker types an autoscaler may add, read from the cluster launcher's config on the head;
    empty when there is none (a local or fixed cluster)."""
    if not path.exists():
        return []
    config = yaml.safe_load(path.read_text()) or {}
    head_type = config.get("head_node_type")
    types = []
    for name, spec in (config.get("available_node_types") or {}).items():
        if name == head_type or not spec.get("max_workers"):
            continue
        res = spec.get("resources") or {}
        types.append(
            NodeType(name, float(res.get("CPU", 0)), float(res.get("GPU", 0)), int(spec["max_workers"]), accelerator_type(res))
        )
    return types


def accelerator_type(resources: dict[str, Any]) -> str:
    """The GPU type Ray advertises in a node's resources ("accelerator_type:H200" -> "H200"), or ""."""
    prefix = "accelerator_type:"
    return next((key[len(prefix) :] for key in resources if key.startswith(prefix)), "")


# ---------------------------------------------------------------------------------------------
# Requests, slots, capacity


def slots(cpus: float, gpus: float, request: JobRequest) -> int:
    """How many jobs of `request` fit on a machine with `cpus` and `gpus`."""
    eps = 1e-9
    counts = []
    if request.num_cpus > 0:
        counts.append(math.floor(cpus / request.num_cpus + eps))
    if request.num_gpus > 0:
        counts.append(math.floor(gpus / request.num_gpus + eps))
    return min(counts) if counts else 1_000_000


def default_request(
    nodes: Sequence[NodeShape],
    node_types: Sequence[NodeType] = (),
    gpus_per_job: float | None = None,
    cpus_per_job: float | None = None,
) -> JobRequest:
    """Per-job resources: 1 GPU when the cluster has (or can add) GPUs, else none; CPUs: the
    job's share of the best GPU node's CPUs (whole CPUs when the share is one or more, else the
    fraction itself, so that K jobs sharing a GPU are not held back by a node with fewer than K
    CPUs), or 1 on a CPU-only cluster."""
    gpu_shapes = [(c, g) for c, g in _shapes(nodes, node_types) if g > 0]
    num_gpus = gpus_per_job if gpus_per_job is not None else (1.0 if gpu_shapes else 0.0)
    if cpus_per_job is not None:
        num_cpus = cpus_per_job
    elif num_gpus > 0 and gpu_shapes:
        num_cpus = max(_cpu_share(c * min(num_gpus, g) / g) for c, g in gpu_shapes)
    else:
        num_cpus = 1.0
    if num_cpus <= 0 and num_gpus <= 0:
        raise PreflightError("a job that asks for no CPU and no GPU would run every job at once; set --cpus-per-job > 0")
    return JobRequest(num_cpus=float(num_cpus), num_gpus=float(num_gpus))


def _cpu_share(share: float) -> float:
    """Whole CPUs for a share of one or more; below one, the share itself (to 1/1000, rounded down)."""
    return float(math.floor(share)) if share >= 1 else math.floor(share * 1000) / 1000


def check_fits(request: JobRequest, nodes: Sequence[NodeShape], node_types: Sequence[NodeType] = ()) -> None:
    """Raise PreflightError unless some node (alive, or one the autoscaler can add) can hold one
    job. Ray itself would only log a warning and wait forever."""
    shapes = _shapes(nodes, node_types)
    if any(slots(c, g, request) >= 1 for c, g in shapes):
        return
    max_gpus = max((g for _, g in shapes), default=0.0)
    max_cpus = max((c for c, _ in shapes), default=0.0)
    where = "the largest node" + (" (counting the autoscaler's node types)" if node_types else "")
    hints = []
    if request.num_gpus > max_gpus:
        flag = (
            "use --gpus-per-job 0 to run on CPUs"
            if max_gpus == 0
            else (f"use --gpus-per-job {max_gpus:g} or less (a fraction like 0.5 shares a GPU)")
        )
        hints.append(f"each job asks for {request.num_gpus:g} GPU(s) but {where} has {max_gpus:g}; {flag}")
    if request.num_cpus > max_cpus:
        hints.append(
            f"each job asks for {request.num_cpus:g} CPU(s) but {where} has {max_cpus:g}; "
            f"use --cpus-per-job {max(max_cpus, 1):g} or less"
        )
    if not hints:  # each fits alone, not together on one node
        hints.append(
            f"no single node has both {request.num_gpus:g} GPU(s) and {request.num_cpus:g} CPU(s); "
            "lower --gpus-per-job or --cpus-per-job"
        )
    raise PreflightError("no node can ever run a job: " + "; ".join(hints))


def capacity(request: JobRequest, nodes: Sequence[NodeShape], node_types: Sequence[NodeType] = ()) -> int:
    """Jobs to keep launched at once: what fits now, plus what the autoscaler may add (pending
    actors are what makes it add nodes)."""
    now = sum(slots(n.cpus, n.gpus, request) for n in nodes)
    extra = sum(t.max_workers * slots(t.cpus, t.gpus, request) for t in node_types)
    return max(1, now + extra)
