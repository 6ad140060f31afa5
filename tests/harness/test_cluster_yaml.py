"""cluster.yaml is a valid Ray cluster-launcher config with the shape the README promises."""

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
    (worker,) = (t for name, t in types.items() if name != config["head_node_type"])
    assert worker["resources"]["GPU"] == 1 and worker["min_workers"] == 0 and worker["max_workers"] == 8
    assert worker["node_config"]["InstanceType"].startswith("g5")
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
    assert autoscaler_node_types(bootstrap) == [NodeType("gpu_worker", 4, 1, 8)]
