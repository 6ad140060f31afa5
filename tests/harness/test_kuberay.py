"""deploy/k8s/rayjob.yaml, raycluster.yaml and pvc.yaml, without a Kubernetes cluster (none is available to
this project): they parse; every field they set sits where KubeRay's RayJob and RayCluster CRDs put
it, with the type the CRD gives it; the RayJob's entrypoint is a command our CLI accepts; the image's
Ray is the project's pinned Ray."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.__main__ import main
from tests.harness.conftest import REPO

K8S = REPO / "deploy" / "k8s"

# Facts read from KubeRay's CRDs (github.com/ray-project/kuberay, ray-operator/config/crd/bases/
# ray.io_rayjobs.yaml and ray.io_rayclusters.yaml, API version v1, at commit feeaf72 of 2026-08-19,
# after ray-operator v1.7.0): the path of each field the manifests set, inside a RayCluster's spec
# (a RayJob's spec.rayClusterSpec is the same schema), and its type there. "*" is a key of a map
# (rayStartParams, resources); "[]" an item of a list. Pod templates are Kubernetes' PodTemplateSpec,
# embedded in the CRDs.
CLUSTER_SPEC_FIELDS = {
    "rayVersion": "string",
    "authOptions.mode": "string",  # enum: disabled, token (KubeRay 1.6+; needs Ray 2.52+)
    "authOptions.secretName": "string",  # a Secret with the key auth_token
    "headGroupSpec.rayStartParams.*": "string",
    "headGroupSpec.template.spec.containers[].name": "string",
    "headGroupSpec.template.spec.containers[].image": "string",
    "headGroupSpec.template.spec.containers[].args[]": "string",
    "headGroupSpec.template.spec.containers[].resources.limits.*": "int-or-string",
    "headGroupSpec.template.spec.containers[].resources.requests.*": "int-or-string",
    "headGroupSpec.template.spec.containers[].volumeMounts[].name": "string",
    "headGroupSpec.template.spec.containers[].volumeMounts[].mountPath": "string",
    "headGroupSpec.template.spec.volumes[].name": "string",
    "headGroupSpec.template.spec.volumes[].persistentVolumeClaim.claimName": "string",
    "workerGroupSpecs[].groupName": "string",
    "workerGroupSpecs[].replicas": "integer",
    "workerGroupSpecs[].minReplicas": "integer",
    "workerGroupSpecs[].maxReplicas": "integer",
    "workerGroupSpecs[].rayStartParams.*": "string",
    "workerGroupSpecs[].template.spec.containers[].name": "string",
    "workerGroupSpecs[].template.spec.containers[].image": "string",
    "workerGroupSpecs[].template.spec.containers[].args[]": "string",
    "workerGroupSpecs[].template.spec.containers[].resources.limits.*": "int-or-string",
    "workerGroupSpecs[].template.spec.containers[].resources.requests.*": "int-or-string",
    "workerGroupSpecs[].template.spec.containers[].volumeMounts[].name": "string",
    "workerGroupSpecs[].template.spec.containers[].volumeMounts[].mountPath": "string",
    "workerGroupSpecs[].template.spec.tolerations[].key": "string",
    "workerGroupSpecs[].template.spec.tolerations[].operator": "string",
    "workerGroupSpecs[].template.spec.tolerations[].effect": "string",
    "workerGroupSpecs[].template.spec.volumes[].name": "string",
    "workerGroupSpecs[].template.spec.volumes[].persistentVolumeClaim.claimName": "string",
}
AUTH_MODES = ("disabled", "token")
CLUSTER_SPEC_REQUIRED = ("headGroupSpec",)
RAYJOB_SPEC_FIELDS = {
    "entrypoint": "string",
    "shutdownAfterJobFinishes": "boolean",
    "ttlSecondsAfterFinished": "integer",
    "backoffLimit": "integer",
} | {f"rayClusterSpec.{path}": kind for path, kind in CLUSTER_SPEC_FIELDS.items()}
TYPES = {"string": (str,), "integer": (int,), "boolean": (bool,), "int-or-string": (int, str)}


def _documents(name: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((K8S / name).read_text())}


def _leaves(node: Any, fields: dict[str, str], path: str = "") -> dict[str, Any]:
    """Every value set in `node`, by its path in the notation of the facts above."""
    if isinstance(node, dict):
        found: dict[str, Any] = {}
        for key, value in node.items():
            at = f"{path}.*" if f"{path}.*" in fields else (f"{path}.{key}" if path else key)
            found |= _leaves(value, fields, at)
        return found
    if isinstance(node, list):
        return {k: v for item in node for k, v in _leaves(item, fields, f"{path}[]").items()}
    return {path: node}


def _check_fields(spec: dict[str, Any], fields: dict[str, str]) -> None:
    for path, value in _leaves(spec, fields).items():
        assert path in fields, f"{path} is not a field of KubeRay's CRD where the manifest puts it"
        assert isinstance(value, TYPES[fields[path]]) and not (fields[path] == "integer" and isinstance(value, bool)), (
            f"{path}: {value!r} is not a {fields[path]}"
        )


@pytest.mark.parametrize("name, kind", [("rayjob.yaml", "RayJob"), ("raycluster.yaml", "RayCluster")])
def test_every_field_sits_where_kuberays_crd_puts_it(name: str, kind: str):
    docs = _documents(name)
    assert set(docs) == {kind}
    resource = docs[kind]
    assert resource["apiVersion"] == "ray.io/v1"
    spec = resource["spec"]
    _check_fields(spec, RAYJOB_SPEC_FIELDS if kind == "RayJob" else CLUSTER_SPEC_FIELDS)
    cluster = spec["rayClusterSpec"] if kind == "RayJob" else spec
    assert all(key in cluster for key in CLUSTER_SPEC_REQUIRED)
    assert cluster["authOptions"]["mode"] in AUTH_MODES


def test_the_rayjob_and_the_raycluster_describe_the_same_cluster():
    assert _documents("rayjob.yaml")["RayJob"]["spec"]["rayClusterSpec"] == _documents("raycluster.yaml")["RayCluster"]["spec"]


def test_the_cluster_keeps_rows_on_a_volume_authenticates_and_runs_one_gpu_job_per_worker():
    claim, fill = _documents("pvc.yaml")["PersistentVolumeClaim"], _documents("pvc.yaml")["Pod"]
    job = _documents("rayjob.yaml")["RayJob"]["spec"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]  # the head writes results, every worker reads the data
    assert fill["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert job["shutdownAfterJobFinishes"] is True
    cluster = job["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token", "secretName": "memseg-ray-token"}  # by reference, not inline
    settings = "\n".join(line.split("#")[0] for line in (K8S / "rayjob.yaml").read_text().splitlines())
    assert "RAY_AUTH_TOKEN" not in settings and "auth_token" not in settings  # no token, nor a variable holding one
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:  # the volume on every pod, at the paths the entrypoint uses
        assert pod["volumes"] == [{"name": "memseg", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}]
        assert pod["containers"][0]["volumeMounts"] == [{"name": "memseg", "mountPath": "/mnt/memseg"}]
    (workers,) = cluster["workerGroupSpecs"]
    limits = workers["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in workers["template"]["spec"]["tolerations"]
    assert "nvidia.com/gpu" not in cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_the_image_runs_the_ray_the_project_pins():
    pinned = re.search(r"^ray==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    assert pinned, "constraints.txt pins no ray"
    assert f'"ray[default]=={pinned[1]}"' in (REPO / "cluster.yaml").read_text()  # the AWS cluster's pin agrees
    for name, kind in (("rayjob.yaml", "RayJob"), ("raycluster.yaml", "RayCluster")):
        spec = _documents(name)[kind]["spec"]
        cluster = spec.get("rayClusterSpec", spec)
        assert cluster["rayVersion"] == pinned[1]
        groups = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
        for group in groups:
            image = group["template"]["spec"]["containers"][0]["image"]
            assert re.fullmatch(rf"rayproject/ray:{re.escape(pinned[1])}-py\d+(-gpu)?", image), image
    fill = _documents("pvc.yaml")["Pod"]["spec"]["containers"][0]["image"]
    assert fill.startswith(f"rayproject/ray:{pinned[1]}-"), fill


def test_the_entrypoint_is_a_run_our_cli_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    entrypoint = _documents("rayjob.yaml")["RayJob"]["spec"]["entrypoint"]
    argv = shlex.split(entrypoint)
    assert argv[:4] == ["python", "-m", "harness", "run"]
    # Each pod's copy of the checkout is this checkout here; results go to a folder of the test's.
    argv = [a.replace("/home/ray/memseg-bench", str(REPO)).replace("/mnt/memseg/results", str(tmp_path)) for a in argv]
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(argv[3:] + ["--dry-run"]) == 0  # the CLI's own parser and error path, as `python -m harness`
    out = capsys.readouterr().out
    assert "jobs (dry run)" in out and "sweep paper" in out, out
