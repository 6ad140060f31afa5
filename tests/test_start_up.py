"""Start-up time: both command lines parse their flags, and `harness run` resolves its sweep up to
the point where Ray starts, without importing torch, scipy or matplotlib (about 4.5 s together on
a 2-core machine, every time a command, a Ray job entrypoint or a test's subprocess starts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CODE = """
import sys
import harness.__main__, memseg.__main__
from harness import cli_run, cluster, lock, plan, store, sweep
harness.__main__.build_parser().parse_args(["run", "--categories", "bottle", "--profile", "tiny"])
memseg.__main__.build_parser().parse_args(["train", "--data-root", "d", "--category", "bottle"])
print(sorted(m for m in ("torch", "scipy", "matplotlib", "timm", "kornia") if m in sys.modules))
"""


def test_the_command_lines_start_without_torch_scipy_or_matplotlib():
    out = subprocess.run([sys.executable, "-c", CODE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"imported at start-up: {out.stdout.strip()}"
