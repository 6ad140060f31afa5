"""Every check a sweep must pass before any job starts: the job function imports, every node runs
the same revision of memseg as the driver, and the data, texture folders and backbone weights
files the jobs will read are there and usable, checked where the jobs will read them (in this
process on a one-machine cluster, else as CPU-free Ray tasks pinned to each node that can host a
job, so they never wait behind jobs).
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness import cluster
from harness.cluster import Cluster, JobRequest, NodeShape, PreflightError, slots
from harness.options import SyntheticData
from harness.plan import Plan
from harness.progress import Event, Note
from harness.worker import prepare_synthetic, resolve_callable, short_error
from memseg import revision as code_revision
from memseg.config import JobConfig, train_images_needed
from memseg.input_checks import too_few_train_images


@dataclass(frozen=True)
class DataGroup:
    """One data set the sweep reads: its kind, root and the categories used from it."""

    kind: str
    root: str | None
    categories: tuple[str, ...]
    # (category, normal training images its jobs need at most, why): checked against the files, so
    # a job that would hold out more images than there are is refused before any job starts.
    needed: tuple[tuple[str, int, str], ...] = ()


@dataclass(frozen=True)
class JobFiles:
    """Files the jobs read besides the data set: texture folders and backbone weights files."""

    texture_dirs: tuple[str, ...] = ()
    weights_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataCheck:
    """What the check found on one machine: problems (the sweep cannot start) and files ignored
    on purpose (stray files such as .DS_Store), one line each."""

    hostname: str
    problems: tuple[str, ...]
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class NodeDataReport:
    """The data check of one node of a cluster, a fingerprint of the data there, and the revision
    of the memseg installed there, so the driver can tell nodes whose data differ (another version
    of the data set, a partial copy) or whose code makes other numbers (memseg.revision)."""

    node: str  # "127.0.0.1 (node 1a2b3c4d, host h)": how the user finds the machine
    check: DataCheck
    fingerprint: dict[str, str]  # "<root>/<category>" -> "N files, digest D"
    revision: int


def check_job_fn(job_fn: str) -> None:
    """The job function must import here before any actor is asked to import it."""
    try:
        resolve_callable(job_fn)
    except (ImportError, ValueError) as err:
        raise PreflightError(f"the job function {job_fn!r} does not import: {short_error(err)}") from None


def data_groups(configs: Sequence[JobConfig]) -> tuple[DataGroup, ...]:
    groups: dict[tuple[str, str | None], dict[str, tuple[int, str]]] = {}
    for c in configs:
        cats = groups.setdefault((c.dataset, c.data_root), {})
        cats[c.category] = max(cats.get(c.category, (0, "")), train_images_needed(c))
    return tuple(
        DataGroup(kind, root, tuple(sorted(cats)), tuple((cat, *cats[cat]) for cat in sorted(cats)))
        for (kind, root), cats in sorted(groups.items(), key=str)
    )


def job_files(configs: Sequence[JobConfig]) -> JobFiles:
    """The texture folders and backbone weights files the jobs will read (checked with the data)."""
    textures = sorted({c.texture_dir for c in configs if c.texture_dir is not None})
    weights = sorted({c.backbone_weights for c in configs if c.backbone_weights not in ("imagenet", "none")})
    return JobFiles(tuple(textures), tuple(weights))


def preflight_data(
    configs: Sequence[JobConfig],
    check_path: str,
    request: JobRequest,
    nodes: Sequence[NodeShape],
    synthetic: SyntheticData | None,
    emit: Callable[[Event], None],
) -> None:
    """Check the data, and the texture folders and weights files the jobs name, where the jobs
    will read them: here when the cluster is this one machine, else on every node that can host a
    job (a CPU-free task pinned to it), or, when none is up yet, on the first node the autoscaler
    adds for a job-shaped task. Raises PreflightError listing every problem."""
    groups, files = data_groups(configs), job_files(configs)
    if len(nodes) == 1 and nodes[0].hostname == socket.gethostname():
        emit(Note("checking the data" + (" (generating it on first use)" if synthetic else "")))
        check = check_data_here(check_path, groups, synthetic, files)
        if check.problems:
            raise PreflightError("the data is not usable:\n" + "\n".join(check.problems))
        _note_ignored(check.ignored, emit)
        return
    found = _check_on_cluster(check_path, groups, synthetic, files, request, nodes, emit)
    differ = revision_differences(found, code_revision.REVISION)
    if differ:
        raise PreflightError(
            "the nodes run different revisions of memseg (their results would mean different things; "
            "docs/results.md, 'What a result means'): install the same checkout everywhere\n" + differ
        )
    reports = [f"on node {r.node}:\n" + "\n".join(r.check.problems) for r in found if r.check.problems]
    if reports:
        raise PreflightError("the data is not usable where the jobs run:\n" + "\n".join(reports))
    for report in found:
        _note_ignored(report.check.ignored, emit, f" on node {report.node}")
    differ = data_differences(found)
    if differ:
        raise PreflightError("the data differs between the nodes that run jobs (results would depend on the node):\n" + differ)


def revision_differences(reports: Sequence[NodeDataReport], driver_revision: int) -> str:
    """Each node's revision, one line per node and one for this driver, when they are not all the
    same; "" when they are. The driver counts: it decides which results are done at its revision."""
    if {r.revision for r in reports} <= {driver_revision}:
        return ""
    lines = [f"  this driver on {socket.gethostname()}: revision {driver_revision}"]
    return "\n".join(lines + [f"  on node {r.node}: revision {r.revision}" for r in reports])


def data_differences(reports: Sequence[NodeDataReport]) -> str:
    """The folders whose fingerprint is not the same on every node, one line per node, or ""."""
    lines = []
    for folder in sorted({f for r in reports for f in r.fingerprint}):
        seen = {r.node: r.fingerprint.get(folder, "missing") for r in reports}
        if len(set(seen.values())) > 1:
            lines.append(f"{folder}:\n" + "\n".join(f"  on node {node}: {value}" for node, value in seen.items()))
    return "\n".join(lines)


def _check_on_cluster(
    check_path: str,
    groups: tuple[DataGroup, ...],
    synthetic: SyntheticData | None,
    files: JobFiles,
    request: JobRequest,
    nodes: Sequence[NodeShape],
    emit: Callable[[Event], None],
) -> list[NodeDataReport]:
    hosts = [n for n in nodes if slots(n.cpus, n.gpus, request) >= 1]
    if hosts:
        emit(Note(f"checking the data on {len(hosts)} node(s) that can run jobs"))
        refs = [
            check_data_task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)).remote(
                check_path, groups, synthetic, files
            )
            for n in hosts
        ]
    else:
        emit(Note("no node can run a job yet: checking the data on the first worker the autoscaler starts"))
        refs = [
            check_data_task.options(num_cpus=request.num_cpus, num_gpus=request.num_gpus).remote(
                check_path, groups, synthetic, files
            )
        ]
    try:
        return list(ray.get(refs))
    except ray.exceptions.RayError as err:  # e.g. the project is not installed on a node
        raise PreflightError(f"the data check could not run on the cluster: {short_error(err, 2000)}") from None


def _note_ignored(ignored: Sequence[str], emit: Callable[[Event], None], where: str = "", shown: int = 5) -> None:
    """Tell the user which files the data check skipped on purpose (e.g. .DS_Store): never silent."""
    if ignored:
        more = ""
        if len(ignored) > shown:
            more = f"\n  ... and {len(ignored) - shown} more (`python -m harness data check` lists them all)"
        emit(Note(f"warning: {len(ignored)} file(s) ignored{where}:\n  " + "\n  ".join(ignored[:shown]) + more))


def check_data_here(
    check_path: str, groups: Sequence[DataGroup], synthetic: SyntheticData | None, files: JobFiles | None = None
) -> DataCheck:
    """Run the data check (and the check of `files`) in this process."""
    if synthetic is not None:
        try:
            prepare_synthetic(synthetic)
        except (ValueError, OSError) as err:  # DataError is a ValueError
            return DataCheck(socket.gethostname(), (f"generating the synthetic data set at {synthetic.root} failed: {err}",), ())
    check = resolve_callable(check_path)
    problems: list[str] = []
    ignored: list[str] = []
    for group in groups:
        if group.root is None:
            problems.append(f"{group.kind} data: no data root given (--data-root)")
            continue
        try:
            report = check(group.kind, Path(group.root), list(group.categories))
        except (ValueError, OSError) as err:  # memseg.data.types.DataError is a ValueError
            problems.append(str(err))
            continue
        ignored += list(getattr(report, "warnings", None) or ())  # a ValidationReport's skipped files
        problems += too_few_train_images(group.kind, group.root, {cat: (count, why) for cat, count, why in group.needed})
    return DataCheck(socket.gethostname(), tuple(problems + check_job_files(files or JobFiles())), tuple(ignored))


def check_job_files(files: JobFiles) -> list[str]:
    """Each texture folder must hold a readable image and each weights file must load as a
    ResNet18 state dict (weights only, nothing unpickled). Checked once before the sweep, since
    otherwise every job would spend its start-up and then fail the same way."""
    problems = []
    if files.texture_dirs:
        from memseg.data.textures import load_texture_folder  # start-up time: only with texture folders

        for folder in files.texture_dirs:
            try:
                load_texture_folder(Path(folder), 32, max_images=1)
            except (ValueError, OSError) as err:  # DataError is a ValueError
                problems.append(str(err))
    if files.weights_files:
        from memseg.backbone import create_encoder  # start-up time: timm only with weights files

        for path in files.weights_files:
            try:
                create_encoder(path)
            except (ValueError, OSError) as err:
                problems.append(str(err))
    return problems


def data_fingerprint(groups: Sequence[DataGroup]) -> dict[str, str]:
    """Per "<root>/<category>": its file count and a digest of the relative paths and sizes of
    its files. Sizes, not contents: cheap on every node (stat only), and enough to tell a partial
    or different copy."""
    found = {}
    for group in groups:
        if group.root is None:
            continue
        for category in group.categories:
            folder = Path(group.root) / category
            paths = folder.rglob("*") if folder.is_dir() else ()
            files = sorted((str(p.relative_to(folder)), p.stat().st_size) for p in paths if p.is_file())
            digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:12]
            found[str(folder)] = f"{len(files)} files, digest {digest}"
    return found


def describe_node() -> str:
    """This Ray node as a user finds it: its address, short node id and host name."""
    node_id = ray.get_runtime_context().get_node_id()
    return f"{ray.util.get_node_ip_address()} (node {node_id[:8]}, host {socket.gethostname()})"


@ray.remote(num_cpus=0, max_retries=0)
def check_data_task(
    check_path: str, groups: Sequence[DataGroup], synthetic: SyntheticData | None, files: JobFiles | None = None
) -> NodeDataReport:
    check = check_data_here(check_path, groups, synthetic, files)
    return NodeDataReport(describe_node(), check, data_fingerprint(groups), code_revision.REVISION)


def ready(plan: Plan, jobs: Sequence[JobConfig], emit: Callable[[Event], None]) -> tuple[Cluster, JobRequest]:
    """Inside a Ray session, before any job starts: the plan's cluster (discovered when it has none),
    the per-job request (the plan's, else sized here), checked to fit some node, and the data of
    `jobs` checked on the nodes that will run them. What `harness run` and `harness tune` both do
    first; PreflightError when any of it fails."""
    shape = plan.cluster if plan.cluster is not None else cluster.discover()
    request = plan.request or cluster.default_request(shape.nodes, shape.node_types, plan.gpus_per_job, plan.spec.cpus_per_job)
    cluster.check_fits(request, shape.nodes, shape.node_types)
    if plan.options.data_check is not None:
        preflight_data(jobs, plan.options.data_check, request, shape.nodes, plan.synthetic, emit)
    return shape, request
