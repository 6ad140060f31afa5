"""Which scheduler started this run, read from the variables it sets in the job's environment:
Slurm (`SLURM_JOB_ID` and its kin, set in every step of a batch job) or KubeRay (`RAY_CLUSTER_NAME`
and `RAY_CLUSTER_NAMESPACE`, set by the KubeRay operator in every Ray container it makes). The run
banner names it, so a log says which allocation produced its rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Scheduler:
    """The batch job or Kubernetes cluster this run is part of."""

    kind: str  # "Slurm" or "KubeRay"
    job: str  # Slurm's job id; KubeRay's RayCluster name
    detail: str = ""  # Slurm's partition; KubeRay's namespace
    nodes: int | None = None  # as the scheduler allocated them (Slurm); None where Ray's own count is the one to show
    node_list: str = ""  # Slurm's compressed host list ("gpu[01-04]")
    gpus_per_node: str = ""  # as Slurm states it ("4", "a100:4"); "" when it does not

    def describe(self, ray_nodes: int | None = None, ray_gpus_per_node: float | None = None) -> str:
        """One line for the banner; Ray's node count and GPUs per node fill what the scheduler does not say."""
        if self.kind == "Slurm":
            head = f"Slurm job {self.job}" + (f" (partition {self.detail})" if self.detail else "")
        else:
            head = f"KubeRay cluster {self.job}" + (f" (namespace {self.detail})" if self.detail else "")
        nodes = self.nodes if self.nodes is not None else ray_nodes
        parts = [head]
        if nodes is not None:
            parts.append(f"{nodes} node(s)" + (f" ({self.node_list})" if self.node_list else ""))
        if self.gpus_per_node:
            parts.append(f"{self.gpus_per_node} GPU(s) per node")
        elif ray_gpus_per_node is not None:
            parts.append(f"{ray_gpus_per_node:g} GPU(s) per node")
        return ", ".join(parts)


def detect(environ: Mapping[str, str] | None = None) -> Scheduler | None:
    """The scheduler whose variables are set, or None (a laptop, a `ray up` cluster)."""
    env = os.environ if environ is None else environ
    if env.get("SLURM_JOB_ID"):
        count = env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or ""
        return Scheduler(
            kind="Slurm",
            job=env["SLURM_JOB_ID"],
            detail=env.get("SLURM_JOB_PARTITION", ""),
            nodes=int(count) if count.isdigit() else None,
            node_list=env.get("SLURM_JOB_NODELIST", ""),
            # --gpus-per-node sets the first; --gres=gpu:N the second (in the step on each node)
            gpus_per_node=env.get("SLURM_GPUS_PER_NODE") or env.get("SLURM_GPUS_ON_NODE") or "",
        )
    if env.get("RAY_CLUSTER_NAME"):
        return Scheduler(kind="KubeRay", job=env["RAY_CLUSTER_NAME"], detail=env.get("RAY_CLUSTER_NAMESPACE", ""))
    return None
