"""Several jobs per GPU (`--jobs-per-gpu K|auto`): what one job of a profile was measured to need
(peak GPU memory, step time), the memory of known GPU types, the arithmetic that turns them into
jobs per GPU and refuses a number that cannot fit, and the sweep's wall-time estimate.

Why: a MemSeg training step is bound by kernel launches (about 30 ms at every size from 64 to 256
px on an H200) and a paper-profile job holds 2.5 GB of a 140 GB card, so one job per GPU leaves
the card mostly idle. Ray's fractional GPUs (1/K GPU per job) let K jobs share it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.cluster import Cluster, JobRequest, PreflightError, capacity
from harness.sweep import AUTO
from memseg.config import JobConfig
from memseg.profiles import profile

MAX_AUTO = 8  # auto never packs more: sharing past the point where the GPU is busy only slows each job (unmeasured)
CONTEXT_GB = 0.5  # each job is its own process with its own CUDA context (typical size; not measured here)
ALLOCATOR_SLACK = 0.2  # PyTorch's caching allocator holds more than the peak it reports as allocated


@dataclass(frozen=True)
class Footprint:
    """What one job of a profile was measured to need, at the profile's own image size and batch."""

    profile: str
    image_size: int
    batch_size: int
    peak_gpu_gb: float  # torch.cuda.max_memory_allocated over training and evaluation
    gpu_step_s: float  # one training step on a GPU (an H200: the only card measured)
    cpu_step_s: float  # one training step on 2 CPU cores
    source: str  # where the numbers come from


FOOTPRINTS: dict[str, Footprint] = {
    f.profile: f
    for f in (
        Footprint(
            "paper", 256, 8, 2.5, 0.030, 4.0,
            "H200: peak 2478 MB (train batch 8, eval batch 32) and 28-33 ms/step, docs/gpu/h200_gpu_check_1.log and "
            "_2.log; CPU: 0.25 steps/s at 256 px batch 8 on 2 cores (docs/speed.md)",
        ),
        Footprint(
            "smoke", 64, 8, 0.5, 0.023, 1.1,
            "H200: 44 steps/s at 64 px batch 8, peak 515 MB up to batch 32 at 64 px, docs/gpu/h200_speed_2.json; "
            "CPU: 0.90 steps/s per job, two 1-CPU jobs sharing 2 cores (the official network's 15-category smoke "
            "sweep, seed 0, full and no_memory: train_steps_per_s of 30 rows; docs/speed.md)",
        ),
        # Not measured on its own: the smoke figures (64 px, batch 8) bound it from above.
        Footprint("tiny", 64, 4, 0.5, 0.023, 0.25, "the smoke profile's figures (64 px, batch 8), an upper bound for batch 4"),
    )
}  # fmt: skip

# Memory per GPU in GB by Ray's accelerator type (the node resource "accelerator_type:<type>"),
# from the vendors' datasheets, the smaller size where a type comes in two (V100, A100); the H200's
# is what nvidia-smi reported on the card in docs/gpu (143771 MiB).
CARD_MEMORY_GB: dict[str, float] = {
    "T4": 16,
    "V100": 16,
    "P100": 16,
    "A10G": 24,
    "L4": 24,
    "L40S": 48,
    "A100": 40,
    "A100-40G": 40,
    "A100-80G": 80,
    "H100": 80,
    "H200": 140,
    "B200": 180,
}


def footprint(profile_name: str, configs: Sequence[JobConfig]) -> Footprint | None:
    """The profile's measured footprint when every job trains at the profile's image size and
    batch (or smaller); None when the sweep asks for more than was measured."""
    found = FOOTPRINTS.get(profile_name)
    if found is None:
        return None
    base = profile(profile_name)
    eval_batch = int(base.get("eval_batch_size", JobConfig.eval_batch_size))
    for c in configs:
        if c.image_size > found.image_size or c.batch_size > found.batch_size or c.eval_batch_size > eval_batch:
            return None
    return found


def job_gpu_gb(peak_gb: float) -> float:
    """GPU memory one job holds: its measured peak, the allocator's slack, and its CUDA context."""
    return peak_gb * (1 + ALLOCATOR_SLACK) + CONTEXT_GB


def headroom_gb(card_gb: float) -> float:
    """Memory left free on each card (other processes, fragmentation): 10%, at least 2 GB."""
    return max(2.0, 0.1 * card_gb)


def most_jobs(card_gb: float, peak_gb: float) -> int:
    """How many jobs of `peak_gb` fit on a card of `card_gb`, uncapped."""
    return max(0, math.floor((card_gb - headroom_gb(card_gb)) / job_gpu_gb(peak_gb) + 1e-9))


@dataclass(frozen=True)
class CardMemory:
    """The memory of the smallest GPU a job may land on, and where the number comes from."""

    gb: float
    source: str  # "--gpu-memory-gb" or "Ray: accelerator_type H200"


def card_memory(cluster: Cluster, gpu_memory_gb: float | None) -> CardMemory | None:
    """--gpu-memory-gb when given, else the smallest known card among the GPU nodes (alive, or
    types the autoscaler may add) by their Ray accelerator type; None when some type is unknown."""
    if gpu_memory_gb is not None:
        return CardMemory(gpu_memory_gb, "--gpu-memory-gb")
    types = {n.accelerator for n in cluster.nodes if n.gpus > 0} | {t.accelerator for t in cluster.node_types if t.gpus > 0}
    if not types or any(t not in CARD_MEMORY_GB for t in types):
        return None
    smallest = min(types, key=lambda t: CARD_MEMORY_GB[t])
    return CardMemory(CARD_MEMORY_GB[smallest], f"Ray: accelerator_type {smallest}")


@dataclass(frozen=True)
class Packing:
    """Jobs per GPU as resolved for a sweep, with the numbers behind it (for the banner)."""

    jobs_per_gpu: int
    asked: str  # "auto" or the number asked for
    card: CardMemory | None
    found: Footprint | None

    @property
    def gpus_per_job(self) -> float:
        return 1.0 / self.jobs_per_gpu

    def describe(self) -> str:
        text = f"{self.jobs_per_gpu} job(s) per GPU ({1 / self.jobs_per_gpu:.3g} GPU each"
        if self.card is None or self.found is None:
            why = "no measured peak memory for this sweep's jobs" if self.found is None else "the GPUs' memory is unknown"
            return text + f"; memory fit not checked: {why}, --gpu-memory-gb GB to check)"
        card, per_job = self.card.gb, job_gpu_gb(self.found.peak_gpu_gb)
        arithmetic = (
            f"({card:g} GB card [{self.card.source}] - {headroom_gb(card):.3g} GB headroom) / {per_job:.3g} GB per "
            f"{self.found.profile} job = {most_jobs(card, self.found.peak_gpu_gb)}"
        )
        if self.asked == AUTO:
            return text + f"; auto: {arithmetic}, capped at {MAX_AUTO})"
        return text + f"; fits: {arithmetic})"


def resolve(
    asked: int | str, profile_name: str, configs: Sequence[JobConfig], cluster: Cluster, gpu_memory_gb: float | None
) -> Packing:
    """Jobs per GPU for `asked` (an integer or "auto"). Raises PreflightError (one line, naming the
    numbers) when the cluster has no GPU, when a number cannot fit the smallest card, or when auto
    lacks the card's memory or the jobs' measured peak."""
    if cluster.gpus <= 0:
        also = " (and --gpu-memory-gb)" if gpu_memory_gb is not None else ""
        raise PreflightError(
            f"--jobs-per-gpu shares GPUs, but the cluster has none ({cluster.describe()}); drop it{also} to run on CPUs"
        )
    card, found = card_memory(cluster, gpu_memory_gb), footprint(profile_name, configs)
    if asked == AUTO:
        if found is None:
            known = ", ".join(sorted(FOOTPRINTS))
            raise PreflightError(
                f"--jobs-per-gpu auto knows the measured peak memory of the {known} profiles at their own image size "
                f"and batch; this sweep ({profile_name} profile) asks for more: give --jobs-per-gpu K"
            )
        if card is None:
            types = sorted({n.accelerator or "none" for n in cluster.nodes if n.gpus > 0})
            raise PreflightError(
                f"--jobs-per-gpu auto needs the GPUs' memory, and Ray's accelerator type ({', '.join(types) or 'none up yet'}) "
                f"is not one of {', '.join(CARD_MEMORY_GB)}: add --gpu-memory-gb GB"
            )
        count = min(MAX_AUTO, most_jobs(card.gb, found.peak_gpu_gb))
        if count < 1:
            raise PreflightError(_too_small(1, card, found))
        return Packing(count, AUTO, card, found)
    count = int(asked)
    if card is not None and found is not None and count > most_jobs(card.gb, found.peak_gpu_gb):
        raise PreflightError(_too_small(count, card, found))
    return Packing(count, str(count), card, found)


def _too_small(count: int, card: CardMemory, found: Footprint) -> str:
    per_job, usable = job_gpu_gb(found.peak_gpu_gb), card.gb - headroom_gb(card.gb)
    most = most_jobs(card.gb, found.peak_gpu_gb)
    return (
        f"--jobs-per-gpu {count} does not fit: {count} x {per_job:.3g} GB per {found.profile} job ({found.peak_gpu_gb:g} GB "
        f"measured peak + {ALLOCATOR_SLACK:.0%} allocator slack + {CONTEXT_GB:g} GB CUDA context) = {count * per_job:.3g} GB "
        f"> {usable:.3g} GB usable of a {card.gb:g} GB card ({card.source}, {headroom_gb(card.gb):.3g} GB headroom); "
        f"at most {most} fit"
    )


@dataclass(frozen=True)
class Estimate:
    """The sweep's training wall time: jobs x steps x measured step time / parallel slots."""

    jobs: int
    steps: int  # per job (the largest)
    step_s: float
    slots: int
    basis: str

    @property
    def seconds(self) -> float:
        return math.ceil(self.jobs / self.slots) * self.steps * self.step_s if self.jobs else 0.0

    def describe(self) -> str:
        return (
            f"about {_duration(self.seconds)} of training: {self.jobs} job(s) x {self.steps} steps x "
            f"{self.step_s * 1000:.0f} ms/step / {self.slots} parallel slot(s) ({self.basis}; evaluation and start-up not counted)"
        )


def estimate(
    profile_name: str, configs: Sequence[JobConfig], request: JobRequest, cluster: Cluster, packing: Packing | None = None
) -> Estimate | None:
    """The estimate for `configs` (the jobs still to run) under `request`, or None without a
    measured step time for their profile. On a GPU, jobs sharing a card are assumed to run at the
    single-job step time: optimistic, and not measured here."""
    found = FOOTPRINTS.get(profile_name)
    if found is None or not configs:
        return None
    on_gpu = request.num_gpus > 0
    slots = min(len(configs), capacity(request, cluster.nodes, cluster.node_types))
    basis = f"{profile_name} step measured on an H200" if on_gpu else f"{profile_name} step measured on 2 CPU cores"
    if on_gpu and packing is not None and packing.jobs_per_gpu > 1:
        basis += f", {packing.jobs_per_gpu} jobs per GPU assumed as fast as one (unmeasured)"
    step_s = found.gpu_step_s if on_gpu else found.cpu_step_s
    return Estimate(len(configs), max(c.steps for c in configs), step_s, max(1, slots), basis)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
