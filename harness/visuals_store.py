"""Each job's pictures and curves on the driver's disk: <results>/<sweep>/visuals/<job_id>/ holds
panel_XX.png, predictions.gif and curves.json, written from `JobResult.visuals`.

The driver calls `persist` before it writes the job's Parquet file (the commit marker), so a job
that counts as done has its pictures, and the bytes never go into the Parquet row. The on-disk
format (curves.json's keys) is read back by `load_visuals`, in this module only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.paths import visuals_dir
from memseg.cli_errors import UserError
from memseg.result import CurvePoints, JobResult, JobVisuals, ShownImage

CURVES_FILE = "curves.json"
GIF_FILE = "predictions.gif"
FORMAT = 1  # curves.json's format; bump when its keys change, so readers can tell old files apart


@dataclass(frozen=True)
class Panel:
    """One prediction panel on disk, with what it shows."""

    file: Path
    role: str
    path: str
    defect_type: str
    label: int
    score: float


@dataclass(frozen=True)
class StoredVisuals:
    """What `load_visuals` reads back: curves as lists of floats (image_roc always; pixel_roc and
    pro when the data had masks), the panels, and the GIF (None when the job made none)."""

    job_id: str
    folder: Path
    threshold: float | None
    columns: tuple[str, ...]
    curves: dict[str, dict[str, list[float]]]
    panels: tuple[Panel, ...]
    gif: Path | None
    gif_paths: tuple[str, ...]  # the test image of each GIF frame


def persist(results_dir: str | Path, sweep: str, result: JobResult) -> JobResult:
    """Write the result's visuals (when it has any) and return the result without them, so that
    nothing heavy stays in memory or reaches the row. A result without visuals is returned as is."""
    if result.visuals is None:
        return result
    write_visuals(results_dir, sweep, result.job_id, result.visuals)
    return dataclasses.replace(result, visuals=None)


def write_visuals(results_dir: str | Path, sweep: str, job_id: str, visuals: JobVisuals) -> Path:
    """Write a job's visuals as files. They go to a temp folder beside the target that is then
    renamed into place, so a reader never sees half of them."""
    final = visuals_dir(results_dir, sweep, job_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{job_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        panels = []
        for k, panel in enumerate(visuals.panels):
            name = f"panel_{k:02d}.png"
            (tmp / name).write_bytes(panel.png)
            panels.append(_shown(panel.image) | {"role": panel.role, "file": name})
        if visuals.gif is not None:
            (tmp / GIF_FILE).write_bytes(visuals.gif)
        (tmp / CURVES_FILE).write_text(json.dumps(_index(visuals, panels), allow_nan=False))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _index(visuals: JobVisuals, panels: list[dict[str, Any]]) -> dict[str, Any]:
    """curves.json: everything but the picture bytes."""
    curves = {"image_roc": _curve(visuals.image_roc, "tpr")}
    if visuals.pixel_roc is not None:
        curves["pixel_roc"] = _curve(visuals.pixel_roc, "tpr")
    if visuals.pro is not None:
        curves["pro"] = _curve(visuals.pro, "pro")
    return {
        "format": FORMAT,
        "threshold": visuals.threshold,
        "thumb_size": visuals.thumb_size,
        "columns": list(visuals.columns),
        "curves": curves,
        "panels": panels,
        "gif": GIF_FILE if visuals.gif is not None else None,
        "gif_items": [_shown(item) for item in visuals.gif_items],
    }


def _curve(points: CurvePoints, y_name: str) -> dict[str, list[float]]:
    return {"fpr": list(points.fpr), y_name: list(points.y)}


def _shown(image: ShownImage) -> dict[str, Any]:
    return dataclasses.asdict(image)


def load_visuals(results_dir: str | Path, sweep: str, job_id: str) -> StoredVisuals | None:
    """The visuals of one job, or None when it has none (a failed job, a job from before visuals)."""
    folder = visuals_dir(results_dir, sweep, job_id)
    index_path = folder / CURVES_FILE
    if not index_path.exists():
        return None
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(f"visuals index {index_path} is unreadable ({err}); delete {folder} to drop them") from None
    panels = tuple(
        Panel(
            file=folder / p["file"],
            role=str(p["role"]),
            path=str(p["path"]),
            defect_type=str(p["defect_type"]),
            label=int(p["label"]),
            score=float(p["score"]),
        )
        for p in index.get("panels", [])
    )
    return StoredVisuals(
        job_id=job_id,
        folder=folder,
        threshold=index.get("threshold"),
        columns=tuple(index.get("columns", ())),
        curves=index.get("curves", {}),
        panels=panels,
        gif=folder / index["gif"] if index.get("gif") else None,
        gif_paths=tuple(str(item["path"]) for item in index.get("gif_items", [])),
    )
