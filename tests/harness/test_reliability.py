"""Fault injection: the guarantees of docs/reliability.md, each broken on purpose.

A killed worker (fake and real job), a SIGKILLed driver, Ctrl-C, a second run on the same results,
jobs that raise (NaN, CUDA OOM, a bug), bad input refused before any job, weights-only loading and
a loopback-only local cluster. Subprocess tests run the real `python -m harness run` (their own
local Ray each); the others share the session's Ray (tests/harness/conftest.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cluster, driver, lock, store
from harness.options import DEFAULT_DATA_CHECK
from harness.progress import JobProgressed, JobRetrying, JobStarted
from harness.sweep import SweepSpec, expand
from tests.harness.conftest import REPO
from tests.harness.fakes import GATE_ENV, LOG_ENV
from tests.harness.plans import sweep_plan

FAKES = "tests.harness.fakes"


# --- processes, seen through /proc ---------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return fields[0], int(fields[1])


def _gone(pid: int) -> bool:
    stat = _stat(pid)
    return stat is None or stat[0] in ("Z", "X")  # a zombie has exited: it only awaits its parent


def _wait_gone(pids, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if not _gone(p)]


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _listening(pids) -> list[tuple[int, str]]:
    """(pid, local address) of every listening TCP socket the processes own."""
    owners = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[target[8:-1]] = pid
        except OSError:  # gone meanwhile
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in owners:  # 0A: LISTEN
                found.append((owners[cols[9]], _address(cols[1])))
    return found


def _address(hex_addr: str) -> str:
    """ "host:port" from /proc/net/tcp's hex form (the address is stored as 32-bit little-endian words)."""
    host, port = hex_addr.split(":")
    raw = b"".join(bytes.fromhex(host[i : i + 8])[::-1] for i in range(0, len(host), 8))
    return f"{ipaddress.ip_address(raw)}:{int(port, 16)}"


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1, as Ray's gRPC servers bind
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


class Harness:
    """`python -m harness run` subprocesses in sessions of their own (so a signal to the group is
    what a terminal's Ctrl-C sends). Remembers every process they start, and ends any that is left
    when the test ends, by its pid."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.log = tmp_path / "jobs.log"
        self.gate = tmp_path / "gate"  # while it exists, no job ends
        self.data = tmp_path / "data"
        self.results = tmp_path / "res"
        self.procs: list[subprocess.Popen] = []
        self.seen: set[int] = set()

    def argv(self, categories, steps: int) -> list[str]:
        for c in categories:
            (self.data / c).mkdir(parents=True, exist_ok=True)
        return [
            "run",
            "--results",
            str(self.results),
            "--name",
            "rel",
            "--profile",
            "tiny",
            "--steps",
            str(steps),
            "--dataset",
            "mvtec",
            "--data-root",
            str(self.data),
            "--categories",
            ",".join(categories),
            "--job-fn",
            f"{FAKES}:logged_job",
            "--data-check",
            f"{FAKES}:fake_check",
            "--cpus-per-job",
            str(os.cpu_count()),
        ]  # one job at a time, on any machine

    def start(self, argv: list[str]) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
        env |= {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", LOG_ENV: str(self.log), GATE_ENV: str(self.gate)}
        n = len(self.procs)
        with open(self.tmp_path / f"out{n}.txt", "w") as out, open(self.tmp_path / f"err{n}.txt", "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness", *argv], cwd=REPO, env=env, start_new_session=True, stdout=out, stderr=err
            )
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen) -> tuple[str, str]:
        n = self.procs.index(proc)
        return (self.tmp_path / f"out{n}.txt").read_text(), (self.tmp_path / f"err{n}.txt").read_text()

    def watch(self, proc: subprocess.Popen) -> set[int]:
        """Note the processes `proc` has started so far (Ray's), to end them if they outlive it."""
        found = _descendants(proc.pid)
        self.seen |= found
        return found

    def log_lines(self) -> list[tuple[str, str, int]]:
        if not self.log.exists():
            return []
        return [(kind, job, int(pid)) for kind, job, pid in (line.split() for line in self.log.read_text().splitlines())]

    def starts(self, job_id: str) -> int:
        return sum(1 for kind, job, _ in self.log_lines() if kind == "start" and job == job_id)

    def committed(self) -> set[str]:
        return set(store.job_statuses(self.results, "rel"))

    def started_unfinished(self) -> set[str]:
        return {job for kind, job, _ in self.log_lines() if kind == "start"} - self.committed()

    def wait_for(self, condition, proc: subprocess.Popen, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if proc.poll() is not None:
                pytest.fail(f"the run exited ({proc.returncode}) early:\n" + "\n".join(self.output(proc)))
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting; run output:\n" + "\n".join(self.output(proc)))
            self.watch(proc)
            time.sleep(0.1)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.seen |= _descendants(proc.pid)
                proc.kill()
                proc.wait()
        for pid in self.seen:  # Ray's helpers of a killed driver exit on their own, in a minute
            if not _gone(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def harness(tmp_path):
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.cleanup()


# --- 2. the driver killed or interrupted; 5. one writer per results folder; 6. loopback only -----


@pytest.mark.slow
def test_ctrl_c_keeps_finished_jobs_and_a_second_run_is_refused_meanwhile(harness):
    cats = ("bottle", "carpet", "grid")
    argv = harness.argv(cats, steps=20)  # 1 s per job, once the gate opens
    harness.gate.touch()
    first = harness.start(argv)
    harness.wait_for(lambda: harness.log_lines(), first)

    # 6. The local cluster the harness started listens on loopback only, with no dashboard.
    sockets = _listening(harness.watch(first) | {first.pid})
    assert sockets and all(_is_loopback(address) for _, address in sockets), sockets
    assert not any(address.endswith(":8265") for _, address in sockets)

    # 5. A second run of the same sweep is refused at once, naming the run in the way.
    second = harness.start(argv)
    assert second.wait(timeout=60) == 2
    out, err = (" ".join(text.split()) for text in harness.output(second))
    assert "being written by another `harness run`" in err and f"pid {first.pid} on host" in err
    assert "checking the data" not in out and "to run" not in out  # it never reached the sweep
    # ... nor started a Ray cluster: the flags name the sweep, so its lock is tried first (a Ray
    # session's folder ends with its driver's pid).
    assert not list(Path(cluster.LOCAL_TEMP_DIR).glob(f"session_*_{second.pid}")), "the refused run started Ray"
    assert list(Path(cluster.LOCAL_TEMP_DIR).glob(f"session_*_{first.pid}")), "where Ray keeps its sessions moved"
    harness.gate.unlink()

    # 2. Ctrl-C (SIGINT to the whole process group, as a terminal sends it) with a job finished and one running.
    harness.wait_for(lambda: harness.committed() and harness.started_unfinished(), first)
    running = {pid for kind, job, pid in harness.log_lines() if kind == "start" and job not in harness.committed()}
    os.killpg(first.pid, signal.SIGINT)
    assert first.wait(timeout=60) == 130
    _, err = harness.output(first)
    finished = harness.committed()
    pending = [c for c in cats if not any(j.startswith(c + "-") for j in finished)]
    text = " ".join(err.split())
    assert f"interrupted: {len(finished)} of {len(cats)} job(s) done" in text, err
    assert f"{len(pending)} pending" in text and all(p + "-" in text for p in pending)
    assert _wait_gone(running) == [], "a cancelled job's actor is still running"
    with lock.hold(harness.results / "rel"):  # released on exit
        pass
    # The finished jobs are committed rows; the same command runs the rest alone (after SIGTERM and
    # SIGKILL: test_preemption.py; after an interrupt, in the driver:
    # test_driver.py::test_an_interrupted_sweep_leaves_no_actor_and_resumes).
    rows = store.load_results(harness.results, "rel")
    assert set(rows["job_id"]) == set(finished) and (rows["status"] == "ok").all()


def test_the_lock_names_its_owner_and_is_free_once_the_owner_is_gone(tmp_path):
    folder = tmp_path / "res" / "sweep"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from harness import lock\n"
            "with lock.hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
            str(folder),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.LockHeld) as err, lock.hold(folder):
            pass
        assert f"pid {holder.pid} on host {os.uname().nodename}" in str(err.value) and str(folder) in str(err.value)
        holder.kill()  # SIGKILL: no clean-up ran, the lock file still names the dead owner
        holder.wait()
        assert str(holder.pid) in lock.lock_path(folder).read_text()
        with lock.hold(folder) as held:
            assert held.warning == "" and f'"pid": {os.getpid()}' in held.path.read_text()
        assert lock.lock_path(folder).read_text() == ""  # released: empty
    finally:
        holder.kill()
        holder.wait()


def test_local_ray_is_started_without_dashboard_on_its_own_temp_dir(monkeypatch):
    import ray

    calls = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    assert cluster.connect() is True
    (kwargs,) = calls
    assert kwargs["include_dashboard"] is False and kwargs["_temp_dir"] == cluster.LOCAL_TEMP_DIR
    assert "address" not in kwargs and "dashboard_host" not in kwargs


# --- 1. worker death with the real job; 3. job failures -----------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    from memseg.data.synthetic import generate

    return generate(
        tmp_path_factory.mktemp("gen") / "data",
        categories=("bottle",),
        image_size=64,
        n_train=10,
        n_test_good=3,
        n_test_defect_per_type=2,
        seed=0,
    )


@pytest.mark.slow
def test_real_job_killed_mid_training_is_retried_and_a_nan_job_fails_alone(ray_session, tmp_path, generated):
    spec = SweepSpec(
        categories=("bottle",), profile="tiny", dataset="synthetic", data_root=str(generated), overrides={"steps": 12}
    )
    (victim,) = expand(spec)
    (diverges,) = expand(spec.replace(overrides={"steps": 12, "lr": 1e30}))  # a real NaN, not a mock
    pids, killed, retries = {}, [], []

    def on_event(event):
        if isinstance(event, JobStarted):
            pids[(event.job_id, event.attempt)] = event.pid
        if isinstance(event, JobRetrying):
            retries.append(event)
        if isinstance(event, JobProgressed) and event.job_id == victim.job_id and event.progress.phase == "train" and not killed:
            os.kill(pids[(victim.job_id, 1)], signal.SIGKILL)  # mid-training
            killed.append(event.progress.step)

    outcome = driver.run_sweep(
        sweep_plan([victim, diverges], "real", tmp_path, max_retries=1, data_check=DEFAULT_DATA_CHECK), on_event=on_event
    )
    assert killed and killed[0] < victim.steps and [r.job_id for r in retries] == [victim.job_id]
    rows = store.load_results(tmp_path, "real").set_index("job_id")
    assert sorted(rows.index) == sorted([victim.job_id, diverges.job_id])  # one row each, none lost
    assert rows.loc[victim.job_id, "status"] == "ok" and rows.loc[victim.job_id, "attempts"] == 2
    assert 0 <= rows.loc[victim.job_id, "image_auroc"] <= 1
    failed = rows.loc[diverges.job_id]
    assert failed["status"] == "failed" and failed["attempts"] == 1  # a job's own error is not retried
    assert re.search(r"NonFiniteLossError: loss became non-finite at step \d+ of 12", failed["error"])
    assert "train_model" in failed["traceback"]
    assert outcome.failed == ((diverges.job_id, failed["error"]),)


@pytest.mark.slow
def test_oom_and_bugs_are_recorded_listed_and_rerun_alone(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    results = tmp_path / "res"
    argv = [
        "run",
        "--results",
        str(results),
        "--profile",
        "tiny",
        "--dataset",
        "mvtec",
        "--data-root",
        str(mvtec_dirs("bottle", "carpet", "grid")),
        "--categories",
        "bottle,carpet,grid",
        "--data-check",
        f"{FAKES}:fake_check",
    ]
    assert cli([*argv, "--job-fn", f"{FAKES}:mixed_job"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    rows = store.load_results(results, "tiny-mvtec").set_index("category")
    oom, bug = rows.loc["bottle"], rows.loc["grid"]
    assert oom["error"].startswith("OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert "mixed_job" in oom["traceback"] and oom["traceback"].rstrip().endswith(oom["error"].split(": ", 1)[1])
    assert bug["error"] == "KeyError: 'no such layer in grid'" and "_buggy_helper" in bug["traceback"]
    assert rows.loc["carpet", "status"] == "ok"
    assert "failed jobs" in out and oom.job_id in out and bug.job_id in out and "CUDA out of memory" in out

    ok_recorded = rows.loc["carpet", "recorded_at"]
    assert cli([*argv, "--job-fn", f"{FAKES}:quick_job", "--retry-failed"]) == 0
    assert "ran 2 job(s)" in capsys.readouterr().out
    rows = store.load_results(results, "tiny-mvtec").set_index("category")
    assert (rows["status"] == "ok").all() and rows.loc["carpet", "recorded_at"] == ok_recorded


# --- 5. a changed configuration never reuses results; --force re-runs -------------------------


@pytest.mark.slow
def test_changed_config_gets_new_ids_and_force_reruns(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    base = [
        "run",
        "--results",
        str(tmp_path / "res"),
        "--name",
        "same-folder",
        "--profile",
        "tiny",
        "--dataset",
        "mvtec",
        "--data-root",
        str(mvtec_dirs("bottle", "carpet")),
        "--categories",
        "bottle,carpet",
        "--job-fn",
        f"{FAKES}:noop_job",
        "--data-check",
        f"{FAKES}:fake_check",
    ]
    assert cli([*base, "--steps", "3"]) == 0
    assert cli([*base, "--steps", "4"]) == 0  # same folder, other experiment
    assert cli([*base, "--steps", "4"]) == 0
    assert cli([*base, "--steps", "4", "--force"]) == 0
    summaries = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ran ")]
    assert [s.split(" in ")[0] for s in summaries] == ["ran 2 job(s)", "ran 2 job(s)", "ran 0 job(s)", "ran 2 job(s)"]
    assert "0 were done before" in summaries[1] and "2 were done before" in summaries[2]
    rows = store.load_results(tmp_path / "res", "same-folder")
    assert len(rows) == 4 and rows["job_id"].nunique() == 4 and sorted(rows["steps"]) == [3, 3, 4, 4]
    # Ids leave paths out (a data set resumes on any mount point): data at another path is flagged.
    other = tmp_path / "other"
    for c in ("bottle", "carpet"):
        (other / c).mkdir(parents=True)
    moved = [other.as_posix() if a == base[base.index("--data-root") + 1] else a for a in base]
    assert cli([*moved, "--steps", "4"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"were made from data at {base[base.index('--data-root') + 1]}; this run reads {other}" in err


# --- 4. bad input, refused before any job starts ------------------------------------------------


def _resnet_like_but_not(path: Path) -> Path:
    import torch

    torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["missing_root", "missing_category", "image_without_mask", "empty_textures", "not_resnet18", "no_weights"]
)
def test_bad_input_is_refused_in_preflight_naming_it(ray_session, cli, capsys, tmp_path, generated, case):
    data = tmp_path / "data"
    shutil.copytree(generated, data)
    extra, named = ["--categories", "bottle"], ""
    if case == "missing_root":
        data = named = tmp_path / "nowhere"
    elif case == "missing_category":
        extra, named = ["--categories", "bottle,carpet"], data / "carpet"
    elif case == "image_without_mask":
        mask = next((data / "bottle" / "ground_truth").rglob("*_mask.png"))
        mask.unlink()
        named = mask.parent.parent.parent / "test" / mask.parent.name / mask.name.replace("_mask", "")
    elif case == "empty_textures":
        named = tmp_path / "dtd"
        (named / "images" / "banded").mkdir(parents=True)
        (named / "images" / "readme.txt").write_text("no images here")
        extra += ["--texture-dir", str(named)]
    elif case == "not_resnet18":
        named = _resnet_like_but_not(tmp_path / "weights.pth")
        extra += ["--backbone-weights", str(named)]
    elif case == "no_weights":
        named = tmp_path / "missing.pth"
        extra += ["--backbone-weights", str(named)]
    results = tmp_path / "res"
    argv = [
        "run",
        "--results",
        str(results),
        "--name",
        "bad",
        "--profile",
        "tiny",
        "--dataset",
        "mvtec",
        "--data-root",
        str(data),
        "--job-fn",
        f"{FAKES}:quick_job",
        *extra,
    ]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "preflight failed, no job started" in err and str(named) in err.replace("\n", ""), err
    assert store.job_statuses(results, "bad") == {}


@pytest.mark.slow
def test_a_stray_file_is_ignored_with_a_warning_and_any_other_file_refused(ray_session, cli, capsys, tmp_path, generated):
    data = Path(shutil.copytree(generated, tmp_path / "data"))
    good = data / "bottle" / "train" / "good"
    (good / ".DS_Store").write_bytes(b"\0")
    argv = [
        "run",
        "--results",
        str(tmp_path / "res"),
        "--profile",
        "tiny",
        "--dataset",
        "mvtec",
        "--data-root",
        str(data),
        "--categories",
        "bottle",
        "--job-fn",
        f"{FAKES}:noop_job",
    ]
    assert cli(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: 1 file(s) ignored" in out and f"{good / '.DS_Store'}: ignored (stray file)" in out
    (good / "notes.txt").write_text("not an image")
    assert cli([*argv, "--force"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "preflight failed, no job started" in err and f"{good / 'notes.txt'}: not an image" in err


def test_a_damaged_result_file_is_named_and_never_read_as_a_result(cli, capsys, tmp_path):
    jobs = tmp_path / "res" / "tiny-synthetic" / "jobs"
    jobs.mkdir(parents=True)
    (damaged := jobs / "bottle-full-s0-0123456789.parquet").write_bytes(b"PAR1 cut short")
    assert cli(["run", "--results", str(tmp_path / "res"), "--profile", "tiny", "--categories", "bottle", "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"its row file {damaged} is unreadable" in out and "not counted" in out
    assert cli(["status", "--results", str(tmp_path / "res")]) == 0
    assert f"its row file {damaged} is unreadable" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("categories: [bottle]\nseedz: [0, 1]\n", ["unknown sweep keys ['seedz']", "seeds"]),
        ("categories: [bottle, bottel]\n", ["unknown categories ['bottel']", "metal_nut"]),
        ("categories: [bottle]\nablations: [full, no_brain]\n", ["unknown ablations ['no_brain']", "no_memory"]),
        ("categories: [bottle]\noverrides: {stepz: 3}\n", ["unknown overrides ['stepz']", "steps"]),
    ],
)
def test_bad_sweep_file_exits_2_naming_the_value(cli, capsys, tmp_path, yaml_text, named):
    sweep = tmp_path / "mine.yaml"
    sweep.write_text(yaml_text)
    assert cli(["run", "--results", str(tmp_path / "res"), "--sweep", str(sweep), "--profile", "tiny"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(sweep) in err and all(n in err for n in named), err
    assert not (tmp_path / "res").exists()


# --- 6. checkpoints never unpickle code ------------------------------------------------------------


class _Payload:
    """A pickle that runs code when loaded the unsafe way: it creates the file `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_carries_code_is_refused_without_running_it(tmp_path):
    import torch

    from memseg.backbone import create_encoder

    marker, evil = tmp_path / "pwned", tmp_path / "resnet18.pth"
    state = create_encoder("none").state_dict()
    torch.save({**state, "payload": _Payload(marker)}, evil)
    with pytest.raises(ValueError, match="resnet18.pth"):
        create_encoder(str(evil))
    assert not marker.exists()


def test_no_code_path_loads_a_pickle():
    """torch.load only with weights_only=True, no pickle.load, no numpy allow_pickle, anywhere."""
    offenders = []
    for folder in ("memseg", "harness"):
        for path in (REPO / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if (
                    ("torch.load(" in code and "weights_only=True" not in code)
                    or "pickle.load" in code
                    or "allow_pickle=True" in code
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []
