"""A run's first screen as a user sees it (`python -m harness run` in a terminal): our one line
about the local Ray cluster instead of Ray's token-authentication warning, and an ETA within 30 s
of the first job starting, long before any job has finished."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memseg.cli_errors import EXIT_INTERRUPTED

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ETA = re.compile(r"eta \d+:\d\d:\d\d")


def _screen(tmp_path: Path) -> list[tuple[float, str]]:
    """(seconds since launch, everything printed so far without colours) after each chunk. Once an
    ETA is on the screen the test has seen what it came for, and the run is stopped as a user
    would (Ctrl-C), which saves the rest of its training and evaluation."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "TTY_COMPATIBLE": "1",  # rich draws the live view as in a terminal
        "TTY_INTERACTIVE": "1",
        "COLUMNS": "160",
    }
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_MODE", None)  # Ray's default for a new local cluster: what a user gets
    argv = [sys.executable, "-m", "harness", "run", "--results", str(tmp_path / "res"), "--profile", "tiny"]
    argv += ["--categories", "bottle", "--seeds", "0", "--steps", "40", "--cpus-per-job", "1"]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    assert proc.stdout is not None
    text, timeline = "", []
    interrupted = False
    while chunk := os.read(proc.stdout.fileno(), 65536):
        text += ANSI.sub("", chunk.decode(errors="replace"))
        timeline.append((time.monotonic() - start, text))
        if not interrupted and ETA.search(text):
            proc.send_signal(signal.SIGINT)
            interrupted = True
    assert proc.wait(timeout=600) == (EXIT_INTERRUPTED if interrupted else 0), text[-3000:]
    return timeline


def _first(timeline: list[tuple[float, str]], pattern: re.Pattern[str]) -> float:
    """When `pattern` first showed; infinity if it never did."""
    return next((t for t, text in timeline if pattern.search(text)), float("inf"))


@pytest.mark.slow
def test_first_screen_has_our_ray_note_and_an_eta_early(tmp_path: Path) -> None:
    timeline = _screen(tmp_path)
    screen = timeline[-1][1]
    assert "Token authentication" not in screen and "token-auth.html" not in screen  # Ray's warning
    assert "local Ray cluster started for this run: token authentication, listening on 127.0.0.1 only" in screen
    started = _first(timeline, re.compile(r"running 1"))
    eta = _first(timeline, ETA)
    finished = _first(timeline, re.compile(r"ok bottle-full-s0-"))
    assert eta - started <= 30.0, (started, eta, screen[-3000:])
    assert eta < finished  # from step rates, not from the first job to finish (none has, when it shows)
