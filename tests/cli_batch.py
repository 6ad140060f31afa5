"""Run several command lines of `python -m memseg` / `python -m harness` in this one process and
print, as JSON, each one's exit status, stdout and stderr: what a shell would see, at the cost of
one interpreter start for all of them (tests/test_cli_mistakes.py starts it as a subprocess).

    python -m tests.cli_batch < argvs.json   # [["memseg", "train", ...], ["harness", "run", ...]]
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def run_one(argv: list[str]) -> dict[str, object]:
    """argv[0] names the package whose `main` runs (memseg | harness); SystemExit (argparse's
    exit 2) is an exit status like any other."""
    if argv[0] == "memseg":
        from memseg.__main__ import main
    else:
        from harness.__main__ import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv[1:])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    print(json.dumps([run_one(argv) for argv in json.load(sys.stdin)]))
