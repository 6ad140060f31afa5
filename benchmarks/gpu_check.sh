#!/usr/bin/env bash
# On a GPU machine, in under 4 minutes: host-sync check of the training step, a short
# paper-profile job on generated data at 256 px (step time, inference images/s at batch 32,
# peak GPU memory), the throughput grid of benchmarks/speed.py, and the CUDA tests.
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# Uses random backbone weights (no download); pass MEMSEG_GPU_CHECK_STEPS to change the job length.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu_check}
steps=${MEMSEG_GPU_CHECK_STEPS:-300}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

echo "== 1. host syncs inside the training step"
python3 benchmarks/gpu_check.py

echo "== 2. paper-profile job on generated data (256 px, batch 8, $steps steps, eval batch 32)"
python3 -c "from memseg.data.synthetic import ensure_synthetic; ensure_synthetic('$out/data', image_size=256, categories=('bottle',))"
python3 -m memseg train --data-root "$out/data" --dataset synthetic --category bottle --profile paper \
  --steps "$steps" --backbone-weights none --device cuda --out "$out/models" --json > "$out/job.json"
python3 - "$out/job.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t, m = r["timings"], r["metrics"]
print(f"step time {1000 / t['train_steps_per_s']:.1f} ms ({t['train_steps_per_s']:.1f} steps/s, "
      f"{8 * t['train_steps_per_s']:.0f} train images/s); simulation {t['sim_images_per_s']:.0f} images/s")
print(f"inference at batch 32: {t['infer_images_per_s']:.0f} images/s; peak GPU memory {t['peak_mem_mb']:.0f} MB")
print(f"metrics after {r['config']['steps']} steps (random backbone): " + ", ".join(f"{k} {v:.3f}" for k, v in m.items() if v is not None))
PY

echo "== 3. throughput grid"
python3 benchmarks/speed.py --sizes 64,128,256 --batch-sizes 1,8,32 --steps 10 --device cuda --out "$out/speed.json"

echo "== 4. CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/memseg/test_model.py -k cuda
