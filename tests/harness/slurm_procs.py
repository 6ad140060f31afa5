"""A one-node Slurm cluster on this machine, for tests: munged, slurmctld and slurmd from Debian's
`slurm-wlm` and `munge` packages, run as root in a temp folder of their own (own munge key and
socket, own ports, state, spool and logs), the node at 127.0.0.1. Stopped by their process ids,
never touching another Slurm or munge on the machine.

The daemons, and so every job, run in a network namespace of their own whose one interface is the
loopback: Slurm's daemons and Ray's servers bind every address ("0.0.0.0", "::"), and there nothing
outside the namespace can reach them; the node's address is 127.0.0.1. (The loopback also holds a
documentation-range address, 198.51.100.1, only because Slurm resolves its listening address with
AI_ADDRCONFIG, which finds nothing where the loopback is all there is.) Slurm's commands (sbatch,
scancel, ...) run in the namespace through nsenter."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.cluster_procs import free_port

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scancel", "scontrol", "sinfo", "unshare", "nsenter", "ip")
INSTALL = "apt-get update && apt-get install -y slurm-wlm munge  (Debian's Slurm 22.05 and munge; run as root)"


def missing() -> str:
    """Why a local Slurm cannot run here, or "" when it can."""
    absent = [name for name in DAEMONS if not shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} not found): {INSTALL}"
    if os.geteuid() != 0:
        return "the Slurm test starts slurmd and munged, which must run as root"
    return ""


def _sbin(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


@dataclass
class LocalSlurm:
    """munged + slurmctld + slurmd for one node (this machine, NodeAddr 127.0.0.1)."""

    cpus: int = 2
    # Short: munge's socket path must fit AF_UNIX's 107 bytes.
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp")))
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)  # by daemon name, in start order
    holder: subprocess.Popen | None = None  # keeps the network namespace alive
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment for Slurm's commands (sbatch, scancel, ...): this cluster's config."""
        return os.environ | {"SLURM_CONF": str(self.conf)}

    def _in_namespace(self, argv: list[str]) -> list[str]:
        assert self.holder is not None, "start() first"
        return [_sbin("nsenter"), f"--net=/proc/{self.holder.pid}/ns/net", "--", *argv]

    def start(self, timeout: float = 60.0) -> None:
        for sub in ("state", "spool"):
            (self.folder / sub).mkdir()
        self.holder = subprocess.Popen(
            [_sbin("unshare"), "--net", "sh", "-c", "ip link set lo up && ip addr add 198.51.100.1/32 dev lo && echo up && exec sleep 86400"],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.holder.stdout is not None and self.holder.stdout.readline().strip() == "up", "no network namespace"
        subprocess.run([_sbin("mungekey"), "-c", "-k", str(self.folder / "munge.key")], check=True, capture_output=True)
        socket_path = self.folder / "munge.sock"
        self._spawn(
            "munged",
            [_sbin("munged"), "-F", "--force", f"--socket={socket_path}", f"--key-file={self.folder / 'munge.key'}",
             f"--pid-file={self.folder / 'munged.pid'}", f"--seed-file={self.folder / 'munged.seed'}",
             f"--log-file={self.folder / 'munged.log'}"],
        )  # fmt: skip
        self._wait(lambda: socket_path.exists(), "munged", timeout)
        self.conf.write_text(self._config(socket_path))
        self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-f", str(self.conf)])
        self._spawn("slurmd", [_sbin("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])
        self._wait(self._node_idle, "the Slurm node", timeout)

    def _config(self, munge_socket: Path) -> str:
        f = self.folder
        return "\n".join(
            [
                f"ClusterName=memseg{secrets.token_hex(3)}",
                f"SlurmctldHost={self.node}(127.0.0.1)",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                # cred_expire: how long a requeued job waits before it starts again (120 s by default)
                f"AuthInfo=socket={munge_socket},cred_expire=10",
                f"SlurmctldPort={free_port()}",
                f"SlurmdPort={free_port()}",
                f"StateSaveLocation={f / 'state'}",
                f"SlurmdSpoolDir={f / 'spool'}",
                f"SlurmctldPidFile={f / 'slurmctld.pid'}",
                f"SlurmdPidFile={f / 'slurmd.pid'}",
                f"SlurmctldLogFile={f / 'slurmctld.log'}",
                f"SlurmdLogFile={f / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "MpiDefault=none",
                "ReturnToService=2",
                "KillWait=10",
                "SchedulerParameters=sched_interval=1",
                f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=1000 State=UNKNOWN",
                "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.folder / f"{name}.out", "w") as out:
            self.procs[name] = subprocess.Popen(
                self._in_namespace(args), env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [name for name, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up ({dead or 'timeout'}); logs in {self.folder}:\n{self.logs()}")
            time.sleep(0.5)

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        return out.returncode == 0 and out.stdout.strip().startswith("idle")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted(self.folder.glob("*.out")) + sorted(self.folder.glob("*.log"))
        )

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._in_namespace([_sbin(argv[0]), *argv[1:]]), env=self.env, capture_output=True, text=True, timeout=60, check=check
        )

    def sbatch(self, script: Path, cwd: Path, env: dict[str, str]) -> str:
        """Submit `script` from `cwd` (the job's SLURM_SUBMIT_DIR) with `env` exported; the job id."""
        out = subprocess.run(
            self._in_namespace([_sbin("sbatch"), "--parsable", str(script)]), cwd=cwd, env=env | {"SLURM_CONF": str(self.conf)},
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return out.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as key=value pairs (JobState, RestartCnt, ...)."""
        out = self.run("scontrol", "show", "job", job_id, check=False).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def stop(self) -> None:
        for proc in reversed(self.procs.values()):  # slurmd first, munged last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
