"""The harness on a real cluster of several nodes, all on this machine: a head and two worker
raylets with one logical GPU each (tests/harness/cluster_procs.py), bound to 127.0.0.1. The
driver is `python -m harness run --address ...` (or `ray job submit`), as on a real cluster.

Worker node "node_b" runs in a mount namespace of its own, so one folder can differ there, like
the local disk of another machine.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import checkpoints, paths, store
from tests.harness.cluster_procs import RAY, LocalCluster, cluster_env
from tests.harness.conftest import REPO
from tests.harness.fakes import GATE_ENV, LOG_ENV
from tests.harness.test_reliability import FAKES, _is_loopback, _listening

pytestmark = [pytest.mark.slow]


class Multi:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log, self.gate = tmp / "jobs.log", tmp / "gate"
        self.env = cluster_env(tmp, **{LOG_ENV: str(tmp / "jobs.log"), GATE_ENV: str(tmp / "gate")})
        self.cluster = LocalCluster(tmp, self.env)
        self.same = tmp / "data-same"  # the same on every node
        self.differs = tmp / "data-differs"  # node_b sees node_b-copy here
        self.node_b_copy = tmp / "node_b-copy"
        self.node_b: subprocess.Popen | None = None
        self.ids: dict[str, str] = {}

    def start(self) -> None:
        for root in (self.same, self.differs):
            for c in ("bottle", "carpet"):
                (root / c).mkdir(parents=True)
                (root / c / "000.png").write_bytes(b"x" * 10)
        (self.node_b_copy / "bottle").mkdir(parents=True)  # carpet is missing on node_b
        (self.node_b_copy / "bottle" / "000.png").write_bytes(b"x" * 10)
        self.cluster.start_head(dashboard=True)
        self.cluster.add_worker("node_a")
        self.node_b = self.cluster.add_worker("node_b", own_folder=(self.node_b_copy, self.differs))
        nodes = self.cluster.nodes(3)
        assert {n["ip"] for n in nodes} == {"127.0.0.1"}, nodes  # every node on loopback
        for n in nodes:
            name = next((k for k in ("node_a", "node_b") if k in n["resources"]), "head")
            self.ids[name] = n["id"]

    def argv(self, name: str, categories: str, data: Path, job: str = "quick_job", *extra: str) -> list[str]:
        return [
            "run",
            "--address",
            self.cluster.address,
            "--results",
            str(self.tmp / "res"),
            "--name",
            name,
            "--profile",
            "tiny",
            "--dataset",
            "mvtec",
            "--data-root",
            str(data),
            "--categories",
            categories,
            "--job-fn",
            f"{FAKES}:{job}",
            "--data-check",
            f"{FAKES}:fake_check",
            "--gpus-per-job",
            "1",
            "--cpus-per-job",
            "0",
            *extra,
        ]

    def harness(self, argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "harness", *argv],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def lines(self, kind: str) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split()[1:] for line in self.log.read_text().splitlines() if line.startswith(kind + " ")]


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    m = Multi(tmp_path_factory.mktemp("multi"))
    try:
        m.start()
        yield m
    finally:
        m.cluster.stop()


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.timeout(400)
def test_jobs_spread_over_the_nodes_of_a_cluster_given_by_address(multi):
    done = multi.harness(multi.argv("spread", "bottle,carpet", multi.same, "sleepy_job", "--steps", "20"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"cluster {multi.cluster.address}: 3 node(s)" in _flat(done.stdout)
    rows = store.load_results(multi.tmp / "res", "spread")
    assert sorted(rows["category"]) == ["bottle", "carpet"]
    assert set(rows["ray_node_id"]) == {multi.ids["node_a"], multi.ids["node_b"]}  # one job on each GPU node
    multi.cluster.watch()
    sockets = _listening(multi.cluster.seen)
    assert sockets and all(_is_loopback(a) for _, a in sockets), sockets


@pytest.mark.timeout(400)
def test_the_data_preflight_names_the_node_whose_data_is_missing_or_different(multi):
    missing = multi.harness(multi.argv("pre", "bottle,carpet", multi.differs))
    assert missing.returncode == 2, missing.stdout + missing.stderr
    err = _flat(missing.stderr)
    assert "preflight failed, no job started" in err and "checking the data on 2 node(s)" in _flat(missing.stdout)
    assert f"on node 127.0.0.1 (node {multi.ids['node_b'][:8]}" in err and str(multi.differs / "carpet") in err
    assert multi.ids["node_a"][:8] not in err  # only the node that lacks it is named
    # Present on both, but not the same: node_b has one file less in bottle/.
    (multi.differs / "bottle" / "001.png").write_bytes(b"y" * 10)
    different = multi.harness(multi.argv("pre", "bottle", multi.differs))
    assert different.returncode == 2, different.stdout + different.stderr
    err = _flat(different.stderr)
    assert "the data differs between the nodes that run jobs" in err and str(multi.differs / "bottle") in err
    assert f"node {multi.ids['node_b'][:8]}" in err and "1 files" in err and "2 files" in err
    assert store.job_statuses(multi.tmp / "res", "pre") == {}


@pytest.mark.timeout(400)
def test_ray_job_submit_runs_the_harness_as_the_readme_shows(multi):
    results = multi.tmp / "res-submitted"
    entry = multi.argv("submitted", "bottle,carpet", multi.same)
    entry = [a for a in entry if not a.startswith("--address") and a != multi.cluster.address]
    entry[entry.index("--results") + 1] = str(results)
    submit = subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            f"http://127.0.0.1:{multi.cluster.dashboard_port}",
            "--",
            sys.executable,
            "-m",
            "harness",
            *entry,
        ],
        env=multi.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = _flat(submit.stdout + submit.stderr)
    assert submit.returncode == 0 and "succeeded" in out, out
    assert "ran 2 job(s)" in out
    rows = store.load_results(results, "submitted")
    assert sorted(rows["category"]) == ["bottle", "carpet"] and (rows["status"] == "ok").all()


@pytest.mark.timeout(400)
def test_a_node_lost_mid_job_costs_only_the_steps_since_its_checkpoint(multi):
    """Last in this file: it kills node_a for good."""
    multi.gate.touch()  # both jobs hold at step 22 of 40; their last checkpoints are at step 20
    argv = multi.argv("lost", "bottle,carpet", multi.same, "checkpointing_job", "--steps", "40", "--checkpoint-every", "5")
    with open(multi.tmp / "lost.out", "w") as stdout, open(multi.tmp / "lost.err", "w") as stderr:  # the child keeps its copies
        driver = subprocess.Popen(
            [sys.executable, "-m", "harness", *argv],
            env=multi.env,
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:

        def on_a_with_checkpoint() -> str | None:
            for job, _pid, node, _first in multi.lines("start"):
                path = paths.checkpoint_path(multi.tmp / "res", "lost", job)
                if node == multi.ids["node_a"] and path.exists() and checkpoints.step_of(path.read_bytes()) >= 20:
                    return job
            return None

        deadline = time.monotonic() + 200
        while not on_a_with_checkpoint():
            assert driver.poll() is None and time.monotonic() < deadline, (multi.tmp / "lost.err").read_text()
            time.sleep(0.2)
        victim = on_a_with_checkpoint()
        saved = checkpoints.step_of(paths.checkpoint_path(multi.tmp / "res", "lost", victim).read_bytes())
        multi.cluster.kill_node(multi.cluster.procs[1])  # node_a: raylet, workers and all, SIGKILL
        multi.gate.unlink()
        assert driver.wait(timeout=240) == 0, (multi.tmp / "lost.err").read_text()
    finally:
        if driver.poll() is None:
            driver.send_signal(signal.SIGTERM)
            driver.wait(timeout=60)
    out = _flat((multi.tmp / "lost.out").read_text())
    rows = store.load_results(multi.tmp / "res", "lost")
    assert sorted(rows["category"]) == ["bottle", "carpet"] and (rows["status"] == "ok").all()  # one row per job
    starts = [(node, int(first)) for job, _pid, node, first in multi.lines("start") if job == victim]
    assert starts == [(multi.ids["node_a"], 0), (multi.ids["node_b"], saved)], starts
    assert saved == 20  # of 40 steps: 20 not redone; at most --checkpoint-every (5) were
    second = next(pid for job, pid, node, _f in multi.lines("start") if job == victim and node == multi.ids["node_b"])
    assert sorted(int(s) for job, pid, s in multi.lines("step") if pid == second) == list(range(21, 41))  # 21, 22 redone
    assert (
        rows.set_index("job_id").loc[victim, "attempts"] == 2
        and rows.set_index("job_id").loc[victim, "ray_node_id"] == multi.ids["node_b"]
    )
    assert "1 retried" in out and f"1 launch(es) started from a checkpoint, skipping {saved} step(s)" in out, out
    assert not list((multi.tmp / "res" / "lost" / "checkpoints").glob("*.safetensors"))
