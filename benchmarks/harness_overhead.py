"""The harness's own cost per job: N no-op jobs through `harness.driver.run_sweep` on a local Ray.

    python benchmarks/harness_overhead.py [--jobs 20] [--cpus N] [--out results/benchmarks/harness_overhead.json]

Each job gets a fresh actor (a new worker process), so the overhead is mostly process start-up,
the result's trip back and the driver's Parquet commit. It is measured twice: one job at a time
(each job holds every CPU) and as many at once as there are CPUs (1 CPU per job).
  per job (wall / jobs):        what a sweep of no-op jobs costs per job
  slot overhead per job:        wall x concurrent slots / jobs, minus the job's own run time:
                                the time a slot is busy with the harness rather than the job
Ray's own start-up (about 4 s, once per sweep) is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
NOOP_JOB = "tests.harness.fakes:noop_job"


def measure(jobs: int, cpus: int, slots: int) -> dict[str, float]:
    """Run `jobs` no-op jobs with `slots` of them at once; the figures of that run."""
    from harness import driver, store
    from harness.options import RunOptions
    from harness.plan import plan_jobs
    from harness.sweep import SweepSpec, expand

    seeds = tuple(range(jobs))
    spec = SweepSpec(
        name="overhead", categories=("bottle",), seeds=seeds, profile="tiny", gpus_per_job=0, cpus_per_job=cpus / slots
    )
    with tempfile.TemporaryDirectory() as results:
        start = time.perf_counter()
        plan = plan_jobs(expand(spec), spec, RunOptions(results=Path(results), data_check=None))
        outcome = driver.run_sweep(plan, job_fn=NOOP_JOB)
        wall = time.perf_counter() - start
        rows = store.load_results(results, "overhead")
    assert outcome.ok and len(rows) == jobs, outcome.failed
    job_s = [
        (datetime.fromisoformat(r.finished_at) - datetime.fromisoformat(r.started_at)).total_seconds()
        for r in store.records(rows)
    ]
    mean_job = sum(job_s) / len(job_s)
    return {
        "jobs": jobs,
        "slots": slots,
        "wall_s": wall,
        "per_job_s": wall / jobs,
        "job_own_s": mean_job,
        "slot_overhead_per_job_s": wall * slots / jobs - mean_job,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    # Workers import the no-op job from the test fakes; keep Ray on loopback.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    sys.path.insert(0, str(REPO))
    import ray

    from harness import cluster

    start = time.perf_counter()
    ray.init(
        num_cpus=args.cpus,
        num_gpus=0,
        include_dashboard=False,
        _temp_dir=cluster.LOCAL_TEMP_DIR,
        log_to_driver=False,
        logging_level="warning",
    )
    ray_start_s = time.perf_counter() - start
    try:
        runs = [measure(args.jobs, args.cpus, 1), measure(args.jobs, args.cpus, args.cpus)]
    finally:
        ray.shutdown()

    table = Table(title=f"harness overhead: {args.jobs} no-op jobs, {args.cpus} CPU(s), Ray start {ray_start_s:.1f} s")
    for name in ("at once", "wall s", "per job s", "job's own s", "slot overhead per job s"):
        table.add_column(name, justify="right")
    for r in runs:
        table.add_row(
            str(r["slots"]),
            f"{r['wall_s']:.2f}",
            f"{r['per_job_s']:.3f}",
            f"{r['job_own_s']:.4f}",
            f"{r['slot_overhead_per_job_s']:.3f}",
        )
    console = Console()
    console.print(table)
    figures = {
        "benchmark": "harness_overhead",
        "ray_start_s": ray_start_s,
        "cpus": args.cpus,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "runs": runs,
    }
    text = json.dumps(figures, indent=2)
    console.out(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
