"""cluster.yaml is a valid Ray cluster-launcher config with the shape docs/cluster.md promises."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray.autoscaler
import yaml

from harness.cluster import NodeType, autoscaler_node_types

CLUSTER = Path(__file__).resolve().parents[2] / "cluster.yaml"


def test_cluster_yaml_matches_rays_schema():
    config = yaml.safe_load(CLUSTER.read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)


def test_cluster_yaml_has_a_cpu_head_and_autoscaling_gpu_workers():
    config = yaml.safe_load(CLUSTER.read_text())
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["node_config"]["InstanceType"].startswith("m5") and "GPU" not in head["resources"]
    workers = {name: t for name, t in types.items() if name != config["head_node_type"]}
    assert sorted(workers) == ["gpu_worker", "gpu_worker_spot"]
    for worker in workers.values():
        assert worker["resources"]["GPU"] == 1 and worker["min_workers"] == 0 and worker["max_workers"] == 8
        assert worker["node_config"]["InstanceType"].startswith("g5")
    assert (
        "InstanceMarketOptions" not in workers["gpu_worker"]["node_config"] and "InstanceMarketOptions" not in head["node_config"]
    )
    spot = workers["gpu_worker_spot"]["node_config"]["InstanceMarketOptions"]
    assert spot["MarketType"] == "spot" and spot["SpotOptions"]["InstanceInterruptionBehavior"] == "terminate"
    # No node type overrides the global setup (that would skip installing the project there).
    assert all("worker_setup_commands" not in t for t in types.values())
    setup = " ".join(config["setup_commands"])
    assert "torch==2.14.1" in setup and "-e /home/ubuntu/memseg-bench" in setup
    assert any("harness data download mvtec --out /data/mvtec --yes" in c for c in config["worker_setup_commands"])
    assert "/home/ubuntu/memseg-bench" in config["file_mounts"]
    text = CLUSTER.read_text()
    assert "type: local" in text and "EFS" in text and "git+https://github.com/CHANGE-ME" in text


def test_the_driver_reads_the_worker_types_as_the_autoscaler_writes_them(tmp_path):
    """`ray up` copies this config to the head as ~/ray_bootstrap_config.yaml; the driver's
    resource check reads the GPU worker type from it."""
    bootstrap = tmp_path / "ray_bootstrap_config.yaml"
    bootstrap.write_text(CLUSTER.read_text())
    assert autoscaler_node_types(bootstrap) == [
        NodeType("gpu_worker", 4, 1, 8, "A10G"),
        NodeType("gpu_worker_spot", 4, 1, 8, "A10G"),
    ]


def test_cluster_yaml_is_locked_down():
    """Token auth on every node, the dashboard on the head's loopback only, and no security group
    that Ray would make itself (its default opens SSH to 0.0.0.0/0)."""
    config = yaml.safe_load(CLUSTER.read_text())
    assert all(t["node_config"].get("SecurityGroupIds") for t in config["available_node_types"].values())
    assert "0.0.0.0/0" not in str(config["provider"])
    assert config["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])
    assert any("chmod 600 ~/.ray/auth_token" in c for c in config["setup_commands"])
