"""deploy/slurm/memseg-bench.sbatch on a real Slurm: a one-node cluster of Debian's slurm-wlm on
127.0.0.1 (tests/harness/slurm_procs.py) runs the project's own script, changed only on its lines
marked EDIT, for a 2-job sweep of fake jobs. Slurm's time-limit warning (SIGTERM to the batch shell,
what `--signal=B:TERM@...` sends) arrives while both jobs are mid-run; the script stops the sweep,
requeues itself, and its second start finishes it from the checkpoints: no row lost or doubled.

In CI (CI=true) a missing Slurm fails the test with the reason; elsewhere it is skipped, saying how
to install it."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import store
from tests.harness.conftest import REPO
from tests.harness.fakes import GATE_ENV, LOG_ENV
from tests.harness.slurm_procs import LocalSlurm, missing

SCRIPT = REPO / "deploy" / "slurm" / "memseg-bench.sbatch"
FAKES = "tests.harness.fakes"
STEPS, EVERY = 40, 5  # checkpointing_job holds at step STEPS // 2 + 2 while the gate file exists


def edited(script: str, values: dict[str, str]) -> str:
    """The script with each line marked EDIT whose start is a key of `values` replaced by its
    value, as a user edits it; every marked line must be matched and nothing else changes."""
    lines, used = [], set()
    for line in script.splitlines():
        key = next((k for k in values if line.startswith(k)), None)
        if "# EDIT" in line:
            assert key is not None, f"a marked line the test does not set: {line}"
            lines.append(values[key])
            used.add(key)
        else:
            lines.append(line)
    assert used == set(values), f"keys matching no marked line: {set(values) - used}"
    return "\n".join(lines) + "\n"


def _wait(what: str, ready, slurm: LocalSlurm, output: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            text = output.read_text() if output.exists() else "(no output yet)"
            pytest.fail(f"timed out waiting for {what}\n--- job output\n{text[-4000:]}\n{slurm.logs()}")
        time.sleep(0.3)


def _listening(job_id: str) -> tuple[list[str], list[str]]:
    """The TCP addresses the job's processes listen on ("ip:port"), and the network interfaces
    their namespace has: every process with SLURM_JOB_ID=job_id in its environment (the batch
    script, Ray's processes, the driver), read from /proc."""
    inodes: set[str] = set()
    one = None
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"\0SLURM_JOB_ID={job_id}\0" not in "\0" + (proc / "environ").read_text(errors="replace"):
                continue
            inodes |= {m[1] for fd in (proc / "fd").iterdir() if (m := re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)))}
            one = proc
        except OSError:  # gone, or not ours to read
            continue
    assert one is not None, f"no process of Slurm job {job_id} found"
    found = []
    for table in ("tcp", "tcp6"):  # the tables of the job's network namespace
        for row in (one / "net" / table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.append(_address(cols[1]))
    interfaces = [line.split(":")[0].strip() for line in (one / "net" / "dev").read_text().splitlines()[2:]]
    return sorted(found), interfaces


def _address(hex_address: str) -> str:
    """/proc/net/tcp's "0100007F:1F90" as "127.0.0.1:8080"; in tcp6, an IPv4-mapped address as its
    IPv4 address and the all-zero address as "[::]"."""
    ip, port = hex_address.split(":")
    if len(ip) == 32 and ip.startswith("0000000000000000FFFF0000"):  # ::ffff:a.b.c.d
        ip = ip[24:]
    if len(ip) == 8:  # little-endian bytes
        text = ".".join(str(int(ip[i : i + 2], 16)) for i in (6, 4, 2, 0))
    else:
        text = "[::]" if int(ip, 16) == 0 else f"[{ip}]"
    return f"{text}:{int(port, 16)}"


def _gcs_port(job_id: str) -> int:
    """The script's port rule for the GCS of job `job_id`."""
    return 20000 + 200 * (int(job_id) % 60)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_sbatch_script_runs_a_sweep_stops_at_the_time_limit_warning_and_its_requeue_resumes_it(tmp_path: Path):
    why = missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Slurm test: {why}")
        pytest.skip(why)
    data = tmp_path / "data"
    for category in ("bottle", "cable"):
        (data / category).mkdir(parents=True)
    results, home = tmp_path / "results", tmp_path / "home"
    home.mkdir()
    sweep = (
        f"--name slurm --profile tiny --dataset mvtec --categories bottle,cable --steps {STEPS} --checkpoint-every {EVERY} "
        f"--job-fn {FAKES}:checkpointing_job --data-check {FAKES}:fake_check"
    )
    script = tmp_path / "memseg-bench.sbatch"
    script.write_text(
        edited(
            SCRIPT.read_text(),
            {
                "#SBATCH --partition=": "#SBATCH --partition=test",
                "#SBATCH --nodes=": "#SBATCH --nodes=1",
                "#SBATCH --gpus-per-node=": "##SBATCH --gpus-per-node=4  (this node has no GPU: the directive is off)",
                "#SBATCH --cpus-per-task=": "#SBATCH --cpus-per-task=2",
                "#SBATCH --time=": "#SBATCH --time=10:00",
                "DATA_ROOT=": f"DATA_ROOT={data}",
                "RESULTS=": f"RESULTS={results}",
                "SWEEP_ARGS=": f"SWEEP_ARGS=({sweep})",
                "VENV=": f"VENV={Path(sys.executable).parent.parent}",
                "REQUEUE=": "REQUEUE=1",
            },
        )
    )
    gate, fake_log = tmp_path / "gate", tmp_path / "fake.log"
    gate.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SLURM_"))} | {
        "PYTHONPATH": str(REPO),
        "HOME": str(home),  # no token of the user's: the script makes the job's own
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        LOG_ENV: str(fake_log),
        GATE_ENV: str(gate),
    }
    slurm, job = LocalSlurm(), ""
    try:
        started = time.monotonic()
        slurm.start()
        job = slurm.sbatch(script, cwd=tmp_path, env=env)  # the job's output file lands in tmp_path
        output = tmp_path / f"memseg-bench-{job}.out"

        def held() -> bool:  # both jobs mid-run, held by the gate, a checkpoint of each written
            steps = re.findall(r"^step (\S+) \d+ (\d+)$", fake_log.read_text(), re.M) if fake_log.exists() else []
            ahead = {j for j, s in steps if int(s) >= STEPS // 2 + 2}
            kept = list((results / "slurm" / "checkpoints").glob("*.safetensors"))
            return len(ahead) == 2 and len(kept) == 2

        _wait("both jobs mid-run with a checkpoint", held, slurm, output)
        # Ray's GCS and raylet listen on the node's address, 127.0.0.1; some of its servers bind every
        # address (0.0.0.0, ::), which in the job's namespace, whose one interface is the loopback,
        # nothing outside can reach.
        listening, interfaces = _listening(job)
        assert interfaces == ["lo"], interfaces
        assert listening and all(a.split(":")[0] in ("127.0.0.1", "0.0.0.0", "[::]") for a in listening), listening
        assert f"cluster 127.0.0.1:{_gcs_port(job)}: 1 node(s)" in output.read_text()

        slurm.run("scancel", "--batch", "--signal=TERM", job)  # what --signal=B:TERM@300 sends at the warning
        _wait("the driver to stop", lambda: "driver exited with status 143" in output.read_text(), slurm, output)
        gate.unlink()  # the second start may finish the jobs
        _wait(
            "the requeued job to finish",
            lambda: slurm.job(job).get("JobState") == "COMPLETED" and slurm.job(job).get("Restarts") == "1",
            slurm,
            output,
            timeout=180,
        )
        took = time.monotonic() - started
        text = output.read_text()
        print(text)
        print(f"Slurm started, job run, stopped, requeued and finished in {took:.1f} s")

        assert "scheduler Slurm job " + job in text
        assert "requeued: the next start resumes the sweep" in text
        assert "(restart 1)" in text and "driver exited with status 0" in text
        rows = store.load_results(results, "slurm")
        assert len(rows) == 2 and rows["job_id"].is_unique and (rows["status"] == "ok").all(), rows
        log = fake_log.read_text().splitlines()
        starts = [line.split() for line in log if line.startswith("start ")]
        ends = Counter(line.split()[1] for line in log if line.startswith("end "))
        assert ends == Counter(set(rows["job_id"])), ends  # each job finished once: none lost, none doubled
        for job_id in rows["job_id"]:
            firsts = [int(s[4]) for s in starts if s[1] == job_id]
            assert firsts[0] == 0 and len(firsts) == 2 and firsts[1] > 0 and firsts[1] % EVERY == 0, firsts  # from its checkpoint
        assert "2 launch(es) started from a checkpoint" in text
    finally:
        for line in slurm.run("squeue", "-h", "-o", "%i", check=False).stdout.split():
            slurm.run("scancel", line, check=False)
        slurm.stop()
        if job:  # the script's Ray temp folder on the node
            shutil.rmtree(f"/tmp/ray-{job}", ignore_errors=True)
