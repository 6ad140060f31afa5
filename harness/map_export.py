"""The files the official evaluation tools read, from the maps a sweep's jobs kept (harness.maps_store):

- `mvtec-maps`: each job's test anomaly maps as single-channel float32 TIFF at each image's original
  size, `<object>/test/<defect>/<stem>.tiff`, the layout MVTec AD's evaluation script reads;
- `mvtec-ad2-submission`: MVTec AD 2's upload, `anomaly_images/<object>/test_private/<stem>.tiff` and
  `.../test_private_mixed/<stem>.tiff` as single-channel float16 TIFF at original size, and
  `anomaly_images_thresholded/` in the same layout as single-channel PNG of only 0 and 255, the map
  binarised at the job's calibrated pixel threshold (score >= threshold is 255); all eight objects,
  exactly one file per private test image and no other file.

Each map is upsampled from the model's resolution with memseg.metrics.upsample_map, the function
native-resolution evaluation uses, so a float32 TIFF holds exactly the values that evaluation scored.
Every check runs before the first file is written: a sweep that lacks an object, an image or a
threshold is refused, naming what is missing. A job whose files are damaged is not exported (the one
reader, harness.store.read_sweep, does not count it): the answer names it, beside a refusal or the files
written, and `harness run` runs it again.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness import maps_store, store
from memseg.cli_errors import UserError
from memseg.data.registry import MVTEC_AD2_CATEGORIES
from memseg.result import MapSet

TARGETS = ("mvtec-maps", "mvtec-ad2-submission")
PRIVATE_SPLITS = ("test_private", "test_private_mixed")
MAPS_DIR = "anomaly_images"
THRESHOLDED_DIR = "anomaly_images_thresholded"


class ExportError(UserError, ValueError):
    """The sweep cannot give the files asked for (no maps kept, an object, image or threshold missing)."""


@dataclass(frozen=True)
class Exported:
    out: Path
    files: int
    jobs: tuple[str, ...]
    notes: tuple[str, ...] = ()  # the damaged jobs and refused files of the sweep (not exported)


def export(
    results_dir: str | Path, sweep: str, target: str, out: str | Path, seed: int | None = None, ablation: str | None = None
) -> Exported:
    """Write `target`'s files for `sweep` under `out` (created; refused when it holds anything)."""
    read = _read(results_dir, sweep)
    out = Path(out)
    try:
        rows = _chosen_rows(read.rows, sweep, seed, ablation)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ExportError(f"{out}: exists and is not an empty folder; give a new folder to --out")
        if target == "mvtec-maps":
            plan = _maps_plan(results_dir, sweep, rows)
        elif target == "mvtec-ad2-submission":
            plan = _submission_plan(results_dir, sweep, rows)
        else:
            raise ExportError(f"unknown export target {target!r}; valid: {', '.join(TARGETS)}")
    except ExportError as err:  # a refusal names the damaged jobs too: they may be what is missing
        if read.notes():
            raise ExportError(err.summary, [*err.problems, *(f"not counted: {n}" for n in read.notes())]) from None
        raise
    out.mkdir(parents=True, exist_ok=True)
    try:
        for relative, write in plan:
            path = out / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # never leave half an upload behind
        raise
    return Exported(out, len(plan), tuple(rows["job_id"]), tuple(read.notes()))


Write = Callable[[Path], None]


def _read(results_dir: str | Path, sweep: str) -> store.SweepRead:
    """The sweep as the one reader finds it; an ExportError when there is no such sweep."""
    if sweep not in store.list_sweeps(results_dir):
        raise ExportError(f"no sweep {sweep!r} under {results_dir}; found: {', '.join(store.list_sweeps(results_dir)) or 'none'}")
    return store.read_sweep(results_dir, sweep)


def _chosen_rows(rows: pd.DataFrame, sweep: str, seed: int | None, ablation: str | None) -> pd.DataFrame:
    """The sweep's ok rows, one per category: with several seeds or ablations, --seed and --ablation choose."""
    rows = store.ok_rows(rows)
    if seed is not None:
        rows = rows[rows["seed"] == seed]
    if ablation is not None:
        rows = rows[rows["ablation"] == ablation]
    if rows.empty:
        raise ExportError(f"sweep {sweep!r} has no finished job" + (" of that seed and ablation" if seed or ablation else ""))
    several = rows.groupby("category")["job_id"].count()
    if (several > 1).any():
        which = ", ".join(f"{c} ({n} jobs)" for c, n in several[several > 1].items())
        raise ExportError(f"several jobs per category: {which}; choose one with --seed N and --ablation NAME")
    return rows.sort_values("category")


def _maps_of(results_dir: str | Path, sweep: str, job_id: str, category: str, flag: str) -> dict[str, MapSet]:
    sets = {s.split: s for s in maps_store.load_maps(results_dir, sweep, job_id)}
    if not sets:
        raise ExportError(f"job {job_id} ({category}) kept no anomaly maps: run the sweep again with {flag} (and --force)")
    return sets


def native_map(map_set: MapSet, index: int) -> np.ndarray:
    """Image `index`'s map at its original size, float32, exactly as native evaluation upsamples it."""
    import torch  # here: only the export needs it, and `harness export` for trackers starts without it

    from memseg.metrics import upsample_map

    small = torch.from_numpy(np.ascontiguousarray(map_set.maps[index]))
    return upsample_map(small, map_set.sizes[index]).numpy()


def _maps_plan(results_dir: str | Path, sweep: str, rows: pd.DataFrame) -> list[tuple[Path, Write]]:
    plan: list[tuple[Path, Write]] = []
    for row in store.records(rows):
        test = _maps_of(results_dir, sweep, row.job_id, row.category, "--save-maps").get("test")
        if test is None:
            raise ExportError(f"job {row.job_id} ({row.category}) kept no test maps: run it again with --save-maps")
        for i, (path, defect) in enumerate(zip(test.paths, test.defect_types)):
            relative = Path(row.category) / "test" / defect / f"{Path(path).stem}.tiff"
            plan.append((relative, _float_tiff(test, i, np.float32)))
    _check_unique(plan)
    return plan


def _submission_plan(results_dir: str | Path, sweep: str, rows: pd.DataFrame) -> list[tuple[Path, Write]]:
    datasets = set(rows["dataset"])
    if datasets != {"mvtec_ad2"}:
        raise ExportError(
            f"an MVTec AD 2 submission needs a sweep on mvtec_ad2; sweep {sweep!r} ran on {', '.join(sorted(datasets))}"
        )
    missing = [c for c in MVTEC_AD2_CATEGORIES if c not in set(rows["category"])]
    if missing:
        raise ExportError(f"the submission needs all eight objects; sweep {sweep!r} lacks {', '.join(missing)}")
    plan: list[tuple[Path, Write]] = []
    for row in store.records(rows):
        sets = _maps_of(results_dir, sweep, row.job_id, row.category, "--predict-private")
        absent = [s for s in PRIVATE_SPLITS if s not in sets or not sets[s].paths]
        if absent:
            raise ExportError(
                f"job {row.job_id} ({row.category}) has no maps of {', '.join(absent)}: run it with --predict-private "
                "on data that holds the private test sets"
            )
        threshold = float(row.pixel_threshold)
        if not math.isfinite(threshold):
            raise ExportError(
                f"job {row.job_id} ({row.category}) has no calibrated pixel threshold (its data had no validation/)"
            )
        for split in PRIVATE_SPLITS:
            for i, path in enumerate(sets[split].paths):
                relative = Path(row.category) / split / f"{Path(path).stem}"
                plan.append((Path(MAPS_DIR) / relative.with_suffix(".tiff"), _float_tiff(sets[split], i, np.float16)))
                plan.append((Path(THRESHOLDED_DIR) / relative.with_suffix(".png"), _binary_png(sets[split], i, threshold)))
    _check_unique(plan)
    return plan


def _check_unique(plan: list[tuple[Path, Write]]) -> None:
    seen: set[Path] = set()
    for relative, _ in plan:
        if relative in seen:
            raise ExportError(f"two images would be written to {relative}: their names clash in the official layout")
        seen.add(relative)


def _float_tiff(map_set: MapSet, index: int, dtype: type) -> Write:
    def write(path: Path) -> None:
        import tifffile

        tifffile.imwrite(path, native_map(map_set, index).astype(dtype), photometric="minisblack")

    return write


def _binary_png(map_set: MapSet, index: int, threshold: float) -> Write:
    def write(path: Path) -> None:
        from PIL import Image

        binary = np.where(native_map(map_set, index) >= threshold, 255, 0).astype(np.uint8)
        Image.fromarray(binary, mode="L").save(path)

    return write
