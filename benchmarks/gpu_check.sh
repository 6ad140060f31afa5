#!/usr/bin/env bash
# On a GPU machine, in ONE run of under 10 minutes (sized for an H200): host-sync check of the eager
# step, the captured step's checks (fresh masks per replay, graph vs eager training), a short
# paper-profile job, the sweep-throughput table (eager vs captured step, K = 1, 2, 4, 8 concurrent
# jobs), a real 15-category paper-profile sweep (seed 0, generated 256 px data, random backbone,
# --jobs-per-gpu auto, --step-mode auto) under a time cap, and the CUDA tests. Keep the log under docs/gpu/:
#   bash benchmarks/gpu_check.sh [OUT_DIR] 2>&1 | tee docs/gpu/h200_gpu_check_3.log
# Environment: MEMSEG_GPU_CHECK_STEPS (the short job, 300), MEMSEG_BENCH_STEPS (steps per benchmark
# job, 300), MEMSEG_BENCH_K (1,2,4,8), MEMSEG_GPU_CHECK_BUDGET_S (the whole script, 560 s; the sweep
# gets what is left of it), MEMSEG_GPU_CHECK_GRID=1 adds benchmarks/speed.py's grid (about a minute).
# Uses random backbone weights (no download).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu_check}
steps=${MEMSEG_GPU_CHECK_STEPS:-300}
bench_steps=${MEMSEG_BENCH_STEPS:-300}
bench_k=${MEMSEG_BENCH_K:-1,2,4,8}
budget=${MEMSEG_GPU_CHECK_BUDGET_S:-560}
started=$(date +%s)
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
nvidia-smi -q | grep -i -A1 "compute mode" | head -2 || true  # MPS off unless the host started it (docs/speed.md)

echo "== 1. host syncs inside the eager training step"
python3 benchmarks/gpu_check.py

echo "== 2. captured step: fresh masks and batches per replay; graph vs eager training ($steps steps each)"
python3 benchmarks/graph_check.py --steps "$steps" || echo "graph_check FAILED (see above); continuing"

echo "== 3. paper-profile job on generated data (256 px, batch 8, $steps steps, eval batch 32, step_mode auto)"
python3 -c "from memseg.data.synthetic import ensure_synthetic; ensure_synthetic('$out/data', image_size=256, categories=('bottle',))"
python3 -m memseg train --data-root "$out/data" --dataset synthetic --category bottle --profile paper \
  --steps "$steps" --backbone-weights none --device cuda --step-mode auto --out "$out/models" --json > "$out/job.json"
python3 - "$out/job.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t, m = r["timings"], r["metrics"]
print(f"step path {r['step_path']} {r['step_fallback']}")
print(f"step time {1000 / t['train_steps_per_s']:.1f} ms ({t['train_steps_per_s']:.1f} steps/s, "
      f"{8 * t['train_steps_per_s']:.0f} train images/s, capture included); simulation {t['sim_images_per_s']:.0f} images/s")
print(f"inference at batch 32: {t['infer_images_per_s']:.0f} images/s; peak GPU memory {t['peak_mem_mb']:.0f} MB")
print(f"metrics after {r['config']['steps']} steps (random backbone): " + ", ".join(f"{k} {v:.3f}" for k, v in m.items() if v is not None))
PY

echo "== 3b. precision: the official float32 (paper profile) against the bf16 variant, 256 px, batch 8"
python3 benchmarks/speed.py --sizes 256 --batch-sizes 8 --steps 10 --device cuda --precisions fp32,tf32,bf16 \
  --skip-before-after --out "$out/precision_speed.json"

echo "== 4. sweep throughput: eager vs captured step, K = $bench_k concurrent paper-profile jobs of $bench_steps steps"
python3 benchmarks/sweep_throughput.py --profile paper --steps "$bench_steps" --k "$bench_k" --modes eager,graph \
  --device cuda --out "$out/sweep_throughput.json"

echo "== 5. 15-category paper-profile sweep: seed 0, generated 256 px data, random backbone, --jobs-per-gpu auto"
python3 -c "from memseg.data.synthetic import ensure_synthetic; ensure_synthetic('$out/sweep/_data/synthetic-256', 256, 0)"
cap=$(( budget - ($(date +%s) - started) - 40 ))  # leave time for the tests
if (( cap < 60 )); then cap=60; fi
echo "time cap for the sweep: ${cap} s (data generated beforehand, not counted)"
sweep_start=$(date +%s)
timeout --signal=INT --kill-after=20 "$cap" python3 -m harness run --all-categories --seeds 0 --profile paper \
  --backbone-weights none --jobs-per-gpu auto --step-mode auto --checkpoint-every 0 --results "$out/sweep" --name paper-gpu-check \
  || echo "harness run ended with status $? (124 or 130: stopped at the time cap; a re-run resumes)"
sweep_s=$(( $(date +%s) - sweep_start ))
python3 - "$out/sweep" "$sweep_s" <<'PY'
import sys
from harness import store
rows = store.load_results(sys.argv[1], "paper-gpu-check")
wall, done = int(sys.argv[2]), int((rows["status"] == "ok").sum()) if len(rows) else 0
print(f"sweep wall time {wall} s: {done} of 15 jobs done, {len(rows) - done} failed")
if len(rows):
    print("step paths: " + ", ".join(f"{p or '?'} x{n}" for p, n in rows["step_path"].fillna("").value_counts().items()))
    print(f"mean job train time {rows['train_s'].mean():.1f} s, mean steps/s per job {rows['train_steps_per_s'].mean():.1f}")
if 0 < done < 15:
    print(f"extrapolated: about {wall * 15 / done:.0f} s for all 15 (linear in jobs done; the last wave may be partial)")
PY

if [[ "${MEMSEG_GPU_CHECK_GRID:-0}" == 1 ]]; then
  echo "== 6. throughput grid"
  python3 benchmarks/speed.py --sizes 64,128,256 --batch-sizes 1,8,32 --steps 10 --device cuda --out "$out/speed.json"
fi

echo "== 7. CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/memseg/test_model.py -k cuda
echo "gpu_check finished in $(( $(date +%s) - started )) s"
