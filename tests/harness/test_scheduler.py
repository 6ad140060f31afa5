"""The run knows which scheduler started it (harness.scheduler): Slurm's or KubeRay's variables, as
each sets them in a job, name the job, its nodes and its GPUs per node in the run banner."""

from __future__ import annotations

import pytest

from harness import scheduler

# What Slurm 22.05 sets in a batch step of `sbatch --nodes=2 --gpus-per-node=4 -p gpu`.
SLURM = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_NNODES": "2",
    "SLURM_JOB_NODELIST": "gpu[01-02]",
    "SLURM_JOB_PARTITION": "gpu",
    "SLURM_GPUS_PER_NODE": "4",
}
# What the KubeRay operator sets in every Ray container (ray-operator/controllers/ray/common/pod.go).
KUBERAY = {
    "RAY_CLUSTER_NAME": "memseg-bench-raycluster-x7k2p",
    "RAY_CLUSTER_NAMESPACE": "vision",
    "KUBERAY_GEN_RAY_START_CMD": "ray start",
}


def test_a_slurm_job_is_named_with_its_nodes_and_gpus_per_node():
    found = scheduler.detect(SLURM)
    assert found is not None and found.kind == "Slurm"
    assert found.describe() == "Slurm job 4242 (partition gpu), 2 node(s) (gpu[01-02]), 4 GPU(s) per node"


def test_gres_gpus_are_read_when_gpus_per_node_is_not_set():
    env = {k: v for k, v in SLURM.items() if k != "SLURM_GPUS_PER_NODE"} | {"SLURM_GPUS_ON_NODE": "2"}
    found = scheduler.detect(env)
    assert found is not None and found.describe().endswith("2 GPU(s) per node")


def test_a_kuberay_cluster_is_named_and_rays_nodes_fill_in_the_counts():
    found = scheduler.detect(KUBERAY)
    assert found is not None and found.kind == "KubeRay"
    assert (
        found.describe(3, 1.0) == "KubeRay cluster memseg-bench-raycluster-x7k2p (namespace vision), 3 node(s), 1 GPU(s) per node"
    )


def test_no_scheduler_on_a_plain_machine():
    assert scheduler.detect({"HOME": "/home/me", "RAY_ADDRESS": "127.0.0.1:6379"}) is None


def test_the_run_banner_says_which_slurm_job_it_runs_in(cli, capsys, monkeypatch: pytest.MonkeyPatch, tmp_path):
    for key, value in SLURM.items():
        monkeypatch.setenv(key, value)
    code = cli(["run", "--profile", "tiny", "--categories", "bottle", "--dry-run", "--results", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "scheduler Slurm job 4242 (partition gpu), 2 node(s) (gpu[01-02]), 4 GPU(s) per node" in out
