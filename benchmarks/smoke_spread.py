"""One smoke-profile job with AdamW's per-parameter loop or its fused kernel, for the spread of the
smoke proxy's results under float rounding (docs/faithfulness.md, "Carpet's bad mode").

    OMP_NUM_THREADS=1 python benchmarks/smoke_spread.py loop|fused CATEGORY SEED [--data DIR]

Generates the learning test's data (bottle and carpet, 64 px, seed 0) into --data on first use
and prints the image and pixel AUROC in %.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from memseg import job as job_module
from memseg.config import JobConfig
from memseg.data.synthetic import generate
from memseg.profiles import profile


class _LoopAdamW(torch.optim.AdamW):
    """AdamW as the CPU ran it before revision 4: the per-parameter loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("capturable", None)
        super().__init__(*args, **{**kwargs, "fused": False, "foreach": False})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("optimizer", choices=("loop", "fused"))
    parser.add_argument("category")
    parser.add_argument("seed", type=int)
    parser.add_argument("--data", type=Path, default=Path("/tmp/smoke-spread-data"))
    args = parser.parse_args()
    if args.optimizer == "loop":
        torch.optim.AdamW = _LoopAdamW  # type: ignore[misc]
    if not (args.data / "carpet").exists():
        generate(args.data, categories=("bottle", "carpet"), image_size=64, seed=0)
    values = profile("smoke") | {
        "category": args.category,
        "data_root": str(args.data),
        "dataset": "synthetic",
        "seed": args.seed,
    }
    metrics = job_module.run(JobConfig.from_dict(values)).metrics
    print(args.optimizer, args.category, args.seed, torch.get_num_threads(), "threads:",
          f"image {metrics['image_auroc'] * 100:.1f} / pixel {metrics['pixel_auroc'] * 100:.1f} AUROC")  # fmt: skip


if __name__ == "__main__":
    main()
