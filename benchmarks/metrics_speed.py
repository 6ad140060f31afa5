"""Speed and peak memory of memseg.metrics against torchmetrics and scikit-learn on the same maps.

    python benchmarks/metrics_speed.py [--quick] [--out results/benchmarks/metrics_speed.json]

Times are the best of --repeats runs after an untimed warm-up run; peak memory is the rise of
the process's resident-set high-water mark during the warm-up run (Linux /proc; else absent).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from sklearn.metrics import precision_recall_curve, roc_auc_score
from torchmetrics.classification import BinaryAUROC, BinaryPrecisionRecallCurve

from memseg import metrics


def make_data(num_images: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps and masks like a test set: a third of the images normal, the rest with 1-3 rectangles
    of varied size, scores higher but overlapping inside the defects."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros(num_images, size, size, dtype=torch.bool)
    for i in range(num_images):
        if i % 3 == 0:
            continue
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            h, w = (int(v) for v in torch.randint(max(1, size // 32), max(2, size // 6), (2,), generator=generator))
            y, x = (int(v) for v in torch.randint(0, size - max(h, w), (2,), generator=generator))
            masks[i, y : y + h, x : x + w] = True
    noise = torch.rand(num_images, size, size, generator=generator)
    maps = 0.7 * noise + 0.3 * masks * torch.rand(num_images, size, size, generator=generator)
    return maps, masks


def _return_freed_memory_to_the_os() -> None:
    """Make glibc serve every allocation above 64 KiB with its own mmap, so that memory freed by
    one measurement leaves the resident set and the next measurement's peak is its own."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_mmap_threshold = -3
    libc.mallopt(m_mmap_threshold, 64 * 1024)


def _rss_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(fn: Callable[[], Any], repeats: int) -> tuple[float, float | None, Any]:
    """(best seconds of `repeats` timed runs, peak extra MB of an untimed warm-up run, value).

    The warm-up run also takes first-call costs (allocator growth, lazy imports) off the times.
    """
    peak_mb = None
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
        base = _rss_kb("VmRSS")
    except OSError:
        base = None
    value = fn()
    high = _rss_kb("VmHWM")
    if base is not None and high is not None:
        peak_mb = (high - base) / 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), peak_mb, value


def bench_size(num_images: int, size: int, repeats: int, references: bool) -> list[dict[str, Any]]:
    maps, masks = make_data(num_images, size)
    labels = masks.flatten(1).any(dim=1)
    scores = metrics.image_scores(maps)
    flat_maps, flat_masks = maps.reshape(-1), masks.reshape(-1)

    def tm_auroc() -> float:
        return float(BinaryAUROC(thresholds=None)(flat_maps, flat_masks.long()))

    def tm_f1() -> float:
        precision, recall, _ = BinaryPrecisionRecallCurve(thresholds=None)(flat_maps, flat_masks.long())
        return float(torch.nan_to_num(2 * precision * recall / (precision + recall)).max())

    def sk_f1() -> float:
        precision, recall, _ = precision_recall_curve(flat_masks.numpy(), flat_maps.numpy())
        with np.errstate(invalid="ignore"):
            return float(np.nan_to_num(2 * precision * recall / (precision + recall)).max())

    ours: dict[str, Callable[[], Any]] = {
        "image_scores": lambda: metrics.image_scores(maps),
        "pixel_auroc": lambda: metrics.pixel_auroc(maps, masks),
        "pixel_f1_max": lambda: metrics.pixel_f1_max(maps, masks)[0],
        "aupro": lambda: metrics.aupro(maps, masks),
        "compute_metrics": lambda: metrics.compute_metrics(scores, labels, maps, masks),
    }
    reference: dict[str, list[tuple[str, str, Callable[[], float]]]] = {
        "pixel_auroc": [
            ("torchmetrics", "BinaryAUROC(thresholds=None)", tm_auroc),
            ("sklearn", "roc_auc_score", lambda: roc_auc_score(flat_masks.numpy(), flat_maps.numpy())),
        ],
        "pixel_f1_max": [
            ("torchmetrics", "BinaryPrecisionRecallCurve(thresholds=None) + F1 max", tm_f1),
            ("sklearn", "precision_recall_curve + F1 max", sk_f1),
        ],
    }
    rows = []
    for name, fn in ours.items():
        seconds, peak_mb, value = measure(fn, repeats)
        row: dict[str, Any] = {
            "images": num_images,
            "size": size,
            "pixels": maps.numel(),
            "metric": name,
            "seconds": seconds,
            "peak_mb": peak_mb,
        }
        if isinstance(value, float):
            row["value"] = value
        if references:
            row["references"] = []
            for ref_name, call, ref_fn in reference.get(name, []):
                ref_seconds, ref_peak, ref_value = measure(ref_fn, repeats)
                row["references"].append(
                    {
                        "name": ref_name,
                        "call": call,
                        "seconds": ref_seconds,
                        "peak_mb": ref_peak,
                        "speedup": ref_seconds / seconds,
                        "abs_diff": abs(ref_value - value),
                    }
                )
        rows.append(row)
    return rows


def environment() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def render(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="memseg.metrics: best-of-repeats seconds, peak extra resident MB")
    for column in ("data", "metric", "s", "peak MB", "reference", "ref s", "ref MB", "ref s / s", "|diff|"):
        table.add_column(column, justify="left" if column in ("metric", "reference") else "right")

    def mb(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    for row in rows:
        head = [f"{row['images']}x{row['size']}px", row["metric"], f"{row['seconds']:.3f}", mb(row["peak_mb"])]
        refs = row.get("references") or []
        if not refs:
            table.add_row(*head, "", "", "", "", "")
        for i, ref in enumerate(refs):
            cells = [
                ref["name"],
                f"{ref['seconds']:.3f}",
                mb(ref["peak_mb"]),
                f"{ref['speedup']:.1f}x",
                f"{ref['abs_diff']:.1e}",
            ]
            table.add_row(*(head if i == 0 else [""] * 4), *cells)
        if row["metric"] == "compute_metrics":
            table.add_section()
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/metrics_speed.json"))
    parser.add_argument("--quick", action="store_true", help="30 images at 64 and 128 px, one timed run")
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-references", action="store_true", help="skip torchmetrics and scikit-learn")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.sizes, args.repeats = 30, [64, 128], 1

    _return_freed_memory_to_the_os()
    console = Console(width=max(Console().width, 110))
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        console.log(f"{args.images} images at {size} px ...")
        rows += bench_size(args.images, size, args.repeats, references=not args.no_references)
    render(rows, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "metrics_speed",
        "environment": environment(),
        "settings": {"images": args.images, "sizes": args.sizes, "repeats": args.repeats},
        "rows": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
