"""Harness test fixtures: one local Ray session for the whole test run (about 4 s to start),
with 4 logical GPUs so GPU-asking actors schedule on this GPU-less machine (they run on CPU)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Keep the local Ray node on 127.0.0.1 (read when ray is imported; see harness.cli_run).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray cluster: 4 CPUs, 4 logical GPUs, no dashboard, its own short temp dir. Workers
    find `tests.harness.fakes` through PYTHONPATH, whatever the working directory."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old) if p)
    try:
        ray.init(
            num_cpus=4,
            num_gpus=4,
            include_dashboard=False,
            _temp_dir=f"/tmp/memseg-ray-test-{os.getuid()}",
            object_store_memory=256 * 2**20,
            log_to_driver=False,
            logging_level="warning",
        )
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def run_cli(argv: list[str]) -> int:
    """Run `run`, `status` or `report` in this process, through the parsers of harness.cli_run and
    harness.cli_results and the one error path (run_command), as `python -m harness` does."""
    from harness import cli_results, cli_run
    from memseg.cli_errors import run_command

    parser = argparse.ArgumentParser(prog="harness")
    subparsers = parser.add_subparsers(dest="command", required=True)
    cli_run.register(subparsers)
    cli_results.register(subparsers)
    args = parser.parse_args(argv)
    return run_command(args.func, args)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def mvtec_dirs(tmp_path: Path):
    """A data root with empty category folders: enough for tests.harness.fakes:fake_check."""

    def make(*categories: str) -> Path:
        root = tmp_path / "data"
        for c in categories:
            (root / c).mkdir(parents=True, exist_ok=True)
        return root

    return make
