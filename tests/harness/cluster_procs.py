"""Ray clusters of several nodes on this one machine, for tests: the head a `ray start --head --block`
process, each worker a tests/harness/ray_node.py process (each node its own raylet), all bound to
127.0.0.1, with its own ports, so a test can start them, kill
one (a lost node) and stop them all by their process ids, never touching another Ray on the box."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.conftest import REPO

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(root: int) -> set[int]:
    from tests.harness.test_reliability import _descendants as walk

    return walk(root)


@dataclass
class LocalCluster:
    """A head and worker nodes as separate `ray start --block` processes."""

    tmp: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    dashboard_port: int = 0
    procs: list[subprocess.Popen] = field(default_factory=list)
    # Short: Ray's socket paths under it must stay within AF_UNIX's 107 bytes.
    ray_tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mray-", dir="/tmp")))
    seen: set[int] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _node_args(self) -> list[str]:
        return [
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            "--object-store-memory=100000000",
            "--disable-usage-stats",
        ]

    def start_head(self, *, dashboard: bool = False, cpus: int = 1) -> None:
        args = [
            RAY,
            "start",
            "--head",
            f"--port={self.port}",
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            f"--temp-dir={self.ray_tmp}",
            *self._node_args(),
        ]
        if dashboard:
            self.dashboard_port = free_port()
            args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
        else:
            args += ["--include-dashboard=false"]
        self._spawn(args, "head")
        self.wait_log("head", "This command will now block forever")

    def add_worker(
        self, name: str, *, gpus: int = 1, cpus: int = 1, own_folder: tuple[Path, Path] | None = None
    ) -> subprocess.Popen:
        """A worker node with logical GPUs and a custom resource named after it (to tell nodes
        apart). With `own_folder` (seen, path) the node runs in a mount namespace of its own where
        `path` shows the contents of `seen`: what a machine with its own disk sees."""
        args = [
            sys.executable,
            "-m",
            "tests.harness.ray_node",
            f"--address={self.address}",
            f"--num-cpus={cpus}",
            f"--num-gpus={gpus}",
            f"--resources={json.dumps({name: 1})}",
        ]
        if own_folder:
            seen, path = own_folder
            script = f"mount --bind {shlex.quote(str(seen))} {shlex.quote(str(path))} && exec {shlex.join(args)}"
            args = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        proc = self._spawn(args, name)
        # One node at a time: a raylet has 30 s to register with the GCS, and on a busy 2-core
        # machine several starting at once can miss that.
        self.wait_log(name, "joined ")
        return proc

    def wait_log(self, name: str, text: str, timeout: float = 180.0) -> None:
        log, proc = self.tmp / f"{name}.log", self.procs[-1]
        deadline = time.monotonic() + timeout
        while text not in log.read_text():
            self.watch()
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Ray node {name} did not start ({proc.poll()=}):\n{log.read_text()[-3000:]}")
            time.sleep(0.5)

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "w") as log:
            proc = subprocess.Popen(args, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def nodes(self, count: int, timeout: float = 120.0) -> list[dict]:
        """Wait until `count` nodes are alive; their address, id and resources (asked by a client
        process: the test process itself never joins the cluster)."""
        code = (
            "import json, ray, sys; ray.init(address=sys.argv[1], logging_level='error'); "
            "print(json.dumps([{'ip': n['NodeManagerAddress'], 'id': n['NodeID'], 'resources': n['Resources']} "
            "for n in ray.nodes() if n['Alive']]))"
        )
        deadline, found = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            self.watch()
            out = subprocess.run(
                [sys.executable, "-c", code, self.address],
                env=self.env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            if out.returncode == 0:
                found = json.loads(out.stdout.strip().splitlines()[-1])
                if len(found) >= count:
                    return found
            time.sleep(1.0)
        raise TimeoutError(f"{len(found)} of {count} Ray nodes came up; logs in {self.tmp}")

    def watch(self) -> None:
        for proc in self.procs:
            self.seen |= _descendants(proc.pid) | {proc.pid}

    def kill_node(self, proc: subprocess.Popen) -> None:
        """A node lost at once (a reclaimed spot instance): SIGKILL to its whole process tree."""
        tree = _descendants(proc.pid) | {proc.pid}
        self.seen |= tree
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()

    def stop(self) -> None:
        self.watch()
        for proc in reversed(self.procs):  # workers first, the head last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # `ray start --block` then stops its node's processes
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        time.sleep(1.0)
        for proc in self.procs:  # each node started its own session: whatever is left of it
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.seen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def cluster_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of the cluster's processes and its clients: loopback only, this checkout
    importable, a HOME of its own (so no ~/.ray/auth_token of the user's is picked up), fast
    detection of a lost node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env |= {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "RAY_AUTH_MODE": "disabled",
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_failure_threshold": "4",
        "RAY_health_check_initial_delay_ms": "1000",
    }
    return env | extra
