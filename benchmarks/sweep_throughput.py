"""How much a device gives when it trains several MemSeg jobs at once, and what a captured step buys.

    python benchmarks/sweep_throughput.py [--profile paper] [--steps 300] [--k 1,2,4,8]
        [--modes eager,graph] [--device auto] [--category bottle] [--out results/benchmarks/sweep_throughput.json]

In ONE run on one device, for each step mode (memseg.train_step: eager, graph, compile) and each K,
K processes each train their own model for M steps at the same time (processes, as Ray runs one
actor per job; they start training together behind a barrier). Each process runs the job's own
training loop (`memseg.job.train_model`) on random images of the profile's size, random backbone.
Reported per (mode, K): aggregate steps/s (K x M over the wall time from the first start to the
last end), per-job slowdown (mean job time over the K = 1 job time of the same mode), mean step
time, peak memory per job (CUDA: torch.cuda.max_memory_allocated, without the ~0.5 GB CUDA
context each process also holds; CPU: the process's peak resident set) and the step path that
really ran (a graph asked for on the CPU runs eagerly and says why). The step time includes the
warm-up and the capture (or compile), as a job pays them.

On the CPU, run it small for the code path: --profile tiny --steps 5 --k 1,2. Each process gets
cpu_count / K threads there. JSON goes to --out (results/ is not committed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from memseg.build import build_model, build_simulator
from memseg.config import STEP_MODES, JobConfig, resolve
from memseg.job import resolve_device, train_model
from memseg.procedural import procedural_textures
from memseg.profiles import profile


def job_config(args: argparse.Namespace, mode: str, device: str) -> JobConfig:
    values = profile(args.profile) | {
        "category": args.category,
        "steps": args.steps,
        "backbone_weights": "none",
        "log_every": 10**6,  # no host sync inside the timed loop but the last step's
        "device": device,
        "step_mode": mode,
    }
    return JobConfig.from_dict(values)


def train_one(config_json: str, threads: int, barrier: Any, results: Any, index: int) -> None:
    """One concurrent job (runs in its own process): set up, wait for the others, train, report."""
    config = JobConfig.from_dict(json.loads(config_json))
    torch.set_num_threads(threads)
    device = resolve_device(config.device)
    memory = resolve(config).memory_size
    generator = torch.Generator().manual_seed(index)
    images = torch.randint(0, 256, (memory + 32, 3, config.image_size, config.image_size), dtype=torch.uint8, generator=generator)
    torch.manual_seed(config.seed + index)
    model = build_model(config).to(device)
    with torch.no_grad():
        model.fill_memory(images[:memory].to(device).float() / 255)
    simulator = build_simulator(config, procedural_textures(16, config.image_size, seed=index).to(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    barrier.wait()
    start = time.time()
    outcome = train_model(model, simulator, images[memory:], config, device, lambda _p: None)
    end = time.time()
    peak_mb = (
        torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    results.put(
        {
            "index": index,
            "start": start,
            "end": end,
            "train_s": outcome.train_s,
            "step_path": outcome.step_path.name,
            "step_fallback": outcome.step_path.fallback,
            "peak_mb": peak_mb,
        }
    )


def run_concurrent(config: JobConfig, k: int) -> dict[str, Any]:
    """K processes training at once; their reports and the aggregate figures."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per job, as a Ray worker; CUDA cannot fork
    barrier, results = ctx.Barrier(k), ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // k)
    procs = [ctx.Process(target=train_one, args=(config.to_json(), threads, barrier, results, i)) for i in range(k)]
    for proc in procs:
        proc.start()
    jobs: list[dict[str, Any]] = []
    while len(jobs) < k:
        try:
            jobs.append(results.get(timeout=5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:  # one job crashed: the others would wait at the barrier for ever
                for proc in procs:
                    proc.terminate()
                raise RuntimeError(f"a benchmark job exited with status {dead[0]} (K = {k}); see its traceback above") from None
    for proc in procs:
        proc.join()
    wall = max(j["end"] for j in jobs) - min(j["start"] for j in jobs)
    job_s = sum(j["train_s"] for j in jobs) / k
    return {
        "k": k,
        "wall_s": wall,
        "aggregate_steps_per_s": k * config.steps / wall,
        "mean_job_train_s": job_s,
        "mean_step_ms": 1000 * job_s / config.steps,
        "peak_mb_per_job": max(j["peak_mb"] for j in jobs),
        "step_path": sorted({j["step_path"] for j in jobs}),
        "step_fallback": sorted({j["step_fallback"] for j in jobs} - {""}),
        "jobs": sorted(jobs, key=lambda j: j["index"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper", help="JobConfig profile (paper: 256 px, batch 8)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--steps", type=int, default=300, help="training steps per job (M)")
    parser.add_argument("--k", default="1,2,4,8", help="concurrent jobs per run, comma-separated")
    parser.add_argument("--modes", default="eager,graph", help=f"step modes to compare, of {', '.join(STEP_MODES)}")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/sweep_throughput.json"))
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    modes = args.modes.split(",")
    try:
        device = resolve_device(args.device)
    except RuntimeError as err:  # CUDA asked for on a machine without it: one line, no traceback
        sys.exit(f"sweep_throughput: {err}")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    console = Console()
    console.print(f"device: {name}; torch {torch.__version__}; profile {args.profile}, {args.steps} steps per job")

    rows: dict[str, list[dict[str, Any]]] = {}
    for mode in modes:
        config = job_config(args, mode, str(device))
        rows[mode] = []
        for k in ks:
            row = run_concurrent(config, k)
            rows[mode].append(row)
            console.print(
                f"  {mode} K={k}: {row['aggregate_steps_per_s']:.2f} steps/s together, "
                f"{row['mean_step_ms']:.1f} ms/step per job, path {','.join(row['step_path'])}"
            )
    config = job_config(args, modes[0], str(device))
    table = Table(
        title=f"{args.profile} profile ({config.image_size} px, batch {config.batch_size}), {args.steps} steps per job, on {name}"
    )
    for column in ("mode", "ran as", "K", "steps/s (all jobs)", "ms/step per job", "slowdown vs K=1", "peak MB per job"):
        table.add_column(column, justify="left" if column in ("mode", "ran as") else "right")
    for mode, mode_rows in rows.items():
        alone = next((r["mean_job_train_s"] for r in mode_rows if r["k"] == 1), mode_rows[0]["mean_job_train_s"])
        for row in mode_rows:
            row["slowdown"] = row["mean_job_train_s"] / alone
            table.add_row(
                mode,
                ",".join(row["step_path"]),
                str(row["k"]),
                f"{row['aggregate_steps_per_s']:.2f}",
                f"{row['mean_step_ms']:.1f}",
                f"{row['slowdown']:.2f}x",
                f"{row['peak_mb_per_job']:.0f}",
            )
    console.print(table)
    for mode, mode_rows in rows.items():
        for reason in sorted({r for row in mode_rows for r in row["step_fallback"]}):
            console.print(f"{mode}: {reason}")
    report = {
        "device": device.type,
        "device_name": name,
        "torch": torch.__version__,
        "profile": args.profile,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "steps": args.steps,
        "cpu_count": os.cpu_count(),
        "modes": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
