"""Connecting to a cluster the user started: `harness run --address` finds the token as Ray's own
clients do (harness.ray_auth), and a head that refuses it, or no head at all, is one line and exit 2
within seconds (harness.cluster.check_head), not 20 s of Ray's retries and a traceback. A token
cluster lets no client in without its token, the harness's or Ray's own. Everything on 127.0.0.1."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import ray_auth, store
from tests.harness.cluster_procs import LocalCluster, cluster_env, free_port
from tests.harness.conftest import REPO
from tests.harness.test_reliability import FAKES


def test_the_token_is_found_where_ray_looks_in_rays_order(tmp_path: Path):
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    env = {"HOME": str(home)}
    assert ray_auth.token_source(env) == ""
    (home / ".ray" / "auth_token").write_text("t")
    assert ray_auth.token_source(env) == "~/.ray/auth_token"
    env[ray_auth.TOKEN_PATH_ENV] = "/run/secrets/ray"
    assert ray_auth.token_source(env) == "RAY_AUTH_TOKEN_PATH=/run/secrets/ray"
    env[ray_auth.TOKEN_ENV] = "t"
    assert ray_auth.token_source(env) == "RAY_AUTH_TOKEN"


def test_token_mode_is_turned_on_only_when_unset_and_a_token_is_there(tmp_path: Path):
    found = {"HOME": str(tmp_path), ray_auth.TOKEN_ENV: "t"}
    assert ray_auth.use_found_token(found) and found[ray_auth.AUTH_MODE_ENV] == "token"
    nothing = {"HOME": str(tmp_path)}
    assert not ray_auth.use_found_token(nothing) and ray_auth.AUTH_MODE_ENV not in nothing
    refused = {"HOME": str(tmp_path), ray_auth.TOKEN_ENV: "t", ray_auth.AUTH_MODE_ENV: "disabled"}  # the user's choice stands
    assert not ray_auth.use_found_token(refused) and refused[ray_auth.AUTH_MODE_ENV] == "disabled"


def _run(address: str, results: Path, data: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    argv = [
        sys.executable, "-m", "harness", "run", "--address", address, "--results", str(results), "--name", "mine",
        "--profile", "tiny", "--dataset", "mvtec", "--data-root", str(data), "--categories", "bottle",
        "--job-fn", f"{FAKES}:quick_job", "--data-check", f"{FAKES}:fake_check",
    ]  # fmt: skip
    start = time.monotonic()
    out = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    return out, time.monotonic() - start


def _one_line_refusal(out: subprocess.CompletedProcess, *words: str) -> None:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr and "bug" not in out.stderr
    for word in words:
        assert word in lines[0], lines[0]


# A refused raw client retries the connection once a second, 20 times by default (Ray's connect
# window for a GCS that is still starting). Refused for its token, it would be refused 20 times: two
# tries say the same in 2 s instead of 20.
REFUSED_TRIES = {"RAY_gcs_server_port_wait_time_s": "2"}
CLIENT = "import ray, sys; ray.init(address=sys.argv[1], logging_level='error'); print('connected', len(ray.nodes()))"


def _client(address: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A plain Ray client (not the harness) connecting to `address`."""
    return subprocess.run([sys.executable, "-c", CLIENT, address], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_token_head_refuses_every_client_without_its_token_and_serves_run_address_with_it(tmp_path: Path):
    """Ray's default: no RAY_AUTH_MODE, a token in ~/.ray/auth_token, and `ray start --head` turns
    token authentication on (cluster.yaml sets RAY_AUTH_MODE=token on every node to the same end).
    The driver runs as the same user (the same HOME), as in a Slurm job, and finds the token as Ray's
    own clients do. The cluster lets no one else in: a plain Ray client without the token or with
    another is refused for it, and `harness run --address` without it or with another says so in one
    line, within seconds. The five clients run side by side (each its own process): the refused ones
    mostly wait on Ray's connection retries, the served one on its job."""
    env = cluster_env(tmp_path)
    del env[ray_auth.AUTH_MODE_ENV]
    token_file = Path(env["HOME"]) / ".ray" / "auth_token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    data = tmp_path / "data"
    (data / "bottle").mkdir(parents=True)
    (tmp_path / "nobody").mkdir()
    stranger = cluster_env(tmp_path / "nobody")  # another HOME, no token
    del stranger[ray_auth.AUTH_MODE_ENV]
    wrong_token = {"RAY_AUTH_TOKEN": secrets.token_hex(32)}
    cluster = LocalCluster(tmp_path, env)
    try:
        cluster.start_head(cpus=2)
        assert "Token authentication is enabled" in (tmp_path / "head.log").read_text()
        with ThreadPoolExecutor(max_workers=5) as pool:
            served = pool.submit(_run, cluster.address, tmp_path / "res", data, env)
            raw_no_token = pool.submit(_client, cluster.address, stranger | {"RAY_AUTH_MODE": "disabled", **REFUSED_TRIES})
            raw_wrong = pool.submit(
                _client, cluster.address, stranger | {"RAY_AUTH_MODE": "token", **wrong_token, **REFUSED_TRIES}
            )
            no_token = pool.submit(_run, cluster.address, tmp_path / "res2", data, stranger)
            wrong = pool.submit(_run, cluster.address, tmp_path / "res3", data, stranger | wrong_token)
            (ok, _), (refused, took), (refused_wrong, took_wrong) = served.result(), no_token.result(), wrong.result()
            raw = (raw_no_token.result(), raw_wrong.result())
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert (store.load_results(tmp_path / "res", "mine")["status"] == "ok").all()
        for client in raw:  # refused, and for the token, not for some other reason
            assert client.returncode != 0 and "connected" not in client.stdout, client.stdout
            assert "auth" in client.stderr.lower(), client.stderr[-3000:]
        _one_line_refusal(refused, cluster.address, "no token", "RAY_AUTH_MODE=token")
        _one_line_refusal(refused_wrong, cluster.address, "refused the token from RAY_AUTH_TOKEN")
        assert took < 15 and took_wrong < 15, (took, took_wrong)  # Ray alone retries for 20 s
        for results in ("res2", "res3"):
            assert not (tmp_path / results / "mine").exists() or store.load_results(tmp_path / results, "mine").empty
    finally:
        cluster.stop()


def test_no_head_at_the_address_is_one_line_at_once(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    (tmp_path / "data" / "bottle").mkdir(parents=True)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    out, took = _run(address, tmp_path / "res", tmp_path / "data", env)
    _one_line_refusal(out, address, "cannot reach")
    assert took < 15, took
