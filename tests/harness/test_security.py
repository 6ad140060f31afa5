"""A cluster that lets no one in: with Ray's token authentication on (RAY_AUTH_MODE=token, as
cluster.yaml starts every node), a client without the token, or with another one, is refused;
with it, `python -m harness run --address` works. Everything on 127.0.0.1."""

from __future__ import annotations

import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import store
from tests.harness.cluster_procs import LocalCluster, cluster_env
from tests.harness.conftest import REPO
from tests.harness.test_reliability import FAKES

CLIENT = "import ray, sys; ray.init(address=sys.argv[1], logging_level='error'); print('connected', len(ray.nodes()))"


# A refused client retries the connection once a second, 20 times by default (Ray's connect window
# for a GCS that is still starting). Refused for its token, it would be refused 20 times: two tries
# say the same in 2 s instead of 20.
REFUSED_TRIES = {"RAY_gcs_server_port_wait_time_s": "2"}


def _client(address: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLIENT, address], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_token_cluster_refuses_clients_without_the_token_and_serves_the_harness_with_it(tmp_path: Path):
    token = secrets.token_hex(32)
    token_file = tmp_path / "auth_token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    with_token = cluster_env(tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    cluster = LocalCluster(tmp_path, with_token)
    try:
        cluster.start_head(cpus=2)
        (node,) = cluster.nodes(1)  # a client holding the token gets in
        assert node["ip"] == "127.0.0.1"

        (tmp_path / "nobody").mkdir()
        wrong_file = tmp_path / "wrong_token"
        wrong_file.write_text(secrets.token_hex(32))
        data = tmp_path / "data" / "bottle"
        data.mkdir(parents=True)
        harness_argv = [
            sys.executable, "-m", "harness", "run", "--address", cluster.address, "--results", str(tmp_path / "res"),
            "--name", "auth", "--profile", "tiny", "--dataset", "mvtec", "--data-root", str(data.parent),
            "--categories", "bottle", "--job-fn", f"{FAKES}:quick_job", "--data-check", f"{FAKES}:fake_check",
        ]  # fmt: skip
        # The two refused clients wait out Ray's connection retries, and the harness run waits on its
        # jobs: the three run side by side (each its own process) instead of one after the other.
        with ThreadPoolExecutor(max_workers=3) as pool:
            no_token_run = pool.submit(
                _client, cluster.address, cluster_env(tmp_path / "nobody", **REFUSED_TRIES)
            )  # RAY_AUTH_MODE=disabled, no token file
            wrong_run = pool.submit(
                _client,
                cluster.address,
                cluster_env(tmp_path / "nobody", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(wrong_file), **REFUSED_TRIES),
            )
            harness_run = pool.submit(
                subprocess.run, harness_argv, env=with_token, cwd=REPO, capture_output=True, text=True, timeout=240
            )
            no_token, wrong, run = no_token_run.result(), wrong_run.result(), harness_run.result()
        assert no_token.returncode != 0 and "connected" not in no_token.stdout, no_token.stdout
        assert wrong.returncode != 0 and "connected" not in wrong.stdout, wrong.stdout
        for refused in (no_token, wrong):  # refused for the token, not for some other reason
            assert "auth" in refused.stderr.lower(), refused.stderr[-3000:]
        assert run.returncode == 0, run.stdout + run.stderr
        assert (store.load_results(tmp_path / "res", "auth")["status"] == "ok").all()
    finally:
        cluster.stop()
