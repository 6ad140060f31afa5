"""Each job's pictures and curves on the driver's disk: <results>/<sweep>/visuals/<job_id>/ holds
panel_XX.png, predictions.gif and curves.json, written from `JobResult.extras["visuals"]`.

The driver calls `persist` before it writes the job's Parquet file (the commit marker), so a job
that counts as done has its pictures, and the bytes never go into the Parquet row.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memseg.config import JobResult

VISUALS_KEY = "visuals"
CURVES_FILE = "curves.json"
GIF_FILE = "predictions.gif"


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
class JobVisuals:
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


def visuals_dir(results_dir: str | Path, sweep: str, job_id: str) -> Path:
    return Path(results_dir) / sweep / "visuals" / job_id


def persist(results_dir: str | Path, sweep: str, result: JobResult) -> JobResult:
    """Write the result's visuals (when it has any) and return the result without them, so that
    the row's extras_json stays small. A result without visuals is returned as it is."""
    payload = result.extras.get(VISUALS_KEY)
    if payload is None:
        return result
    write_visuals(results_dir, sweep, result.job_id, payload)
    return dataclasses.replace(result, extras={k: v for k, v in result.extras.items() if k != VISUALS_KEY})


def write_visuals(results_dir: str | Path, sweep: str, job_id: str, payload: dict[str, Any]) -> Path:
    """Write a `memseg.visuals.job_visuals` payload as files. They go to a temp folder beside the
    target that is then renamed into place, so a reader never sees half of them."""
    _check_payload(payload, job_id)
    final = visuals_dir(results_dir, sweep, job_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{job_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        panels = []
        for k, panel in enumerate(payload["panels"]):
            name = f"panel_{k:02d}.png"
            (tmp / name).write_bytes(panel["png"])
            panels.append({key: value for key, value in panel.items() if key != "png"} | {"file": name})
        gif = payload.get("gif")
        if gif is not None:
            (tmp / GIF_FILE).write_bytes(gif)
        index = {key: value for key, value in payload.items() if key not in ("panels", "gif")}
        index |= {"panels": panels, "gif": GIF_FILE if gif is not None else None}
        (tmp / CURVES_FILE).write_text(json.dumps(index, allow_nan=False))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_visuals(results_dir: str | Path, sweep: str, job_id: str) -> JobVisuals | None:
    """The visuals of one job, or None when it has none (a failed job, a job from before visuals)."""
    folder = visuals_dir(results_dir, sweep, job_id)
    index_path = folder / CURVES_FILE
    if not index_path.exists():
        return None
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"visuals index {index_path} is unreadable ({err}); delete {folder} to drop them") from None
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
    return JobVisuals(
        job_id=job_id,
        folder=folder,
        threshold=index.get("threshold"),
        columns=tuple(index.get("columns", ())),
        curves=index.get("curves", {}),
        panels=panels,
        gif=folder / index["gif"] if index.get("gif") else None,
        gif_paths=tuple(str(item["path"]) for item in index.get("gif_items", [])),
    )


def _check_payload(payload: Any, job_id: str) -> None:
    """Fail with the job's name on a payload that is not what memseg.visuals makes."""
    where = f"job {job_id}: extras[{VISUALS_KEY!r}]"
    if not isinstance(payload, dict):
        raise ValueError(f"{where} must be a dict from memseg.visuals.job_visuals, got {type(payload).__name__}")
    for key in ("panels", "curves"):
        if key not in payload:
            raise ValueError(f"{where} lacks {key!r}; expected the keys of memseg.visuals.job_visuals")
    for k, panel in enumerate(payload["panels"]):
        if not isinstance(panel, dict) or not isinstance(panel.get("png"), bytes):
            raise ValueError(f"{where}: panel {k} has no PNG bytes under 'png'")
    gif = payload.get("gif")
    if gif is not None and not isinstance(gif, bytes):
        raise ValueError(f"{where}: 'gif' must be bytes or None, got {type(gif).__name__}")
    threshold = payload.get("threshold")
    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"{where}: 'threshold' must be finite or None, got {threshold}")
