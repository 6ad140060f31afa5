"""Each job's anomaly maps on the driver's disk, when the job was asked to keep them (save_maps,
predict_private): <results>/<sweep>/maps/<job_id>.npz, one compressed file per job, written from
`JobResult.maps` before the job's row (its commit marker) and read back here only.

The maps stay at the model's resolution (float32, about 256 KB per image at 256 px before
compression) with each image's original size beside them; `harness export` upsamples them to the
files the official tools read. They never go into the Parquet row.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.paths import sweep_dir
from memseg.atomic import write_atomic
from memseg.result import MapSet

MAPS_DIR = "maps"
FORMAT = 1  # the npz's layout; bump when it changes


def maps_path(results_dir: str | Path, sweep: str, job_id: str) -> Path:
    return sweep_dir(results_dir, sweep) / MAPS_DIR / f"{job_id}.npz"


def write_maps(results_dir: str | Path, sweep: str, job_id: str, sets: tuple[MapSet, ...]) -> Path | None:
    """Write the job's map sets (none: nothing written, None returned)."""
    if not sets:
        return None
    index = [
        {"split": s.split, "paths": list(s.paths), "defect_types": list(s.defect_types), "sizes": [list(z) for z in s.sizes]}
        for s in sets
    ]
    arrays: dict[str, Any] = {f"maps_{i}": np.asarray(s.maps, dtype=np.float32) for i, s in enumerate(sets)}
    arrays["index"] = np.array(json.dumps({"format": FORMAT, "sets": index}))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = maps_path(results_dir, sweep, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    return path


def load_maps(results_dir: str | Path, sweep: str, job_id: str) -> tuple[MapSet, ...]:
    """The job's map sets as written; () when it kept none."""
    path = maps_path(results_dir, sweep, job_id)
    if not path.exists():
        return ()
    with np.load(path) as data:
        index = json.loads(str(data["index"]))
        return tuple(
            MapSet(
                split=entry["split"],
                paths=tuple(entry["paths"]),
                defect_types=tuple(entry["defect_types"]),
                sizes=tuple((int(h), int(w)) for h, w in entry["sizes"]),
                maps=data[f"maps_{i}"],
            )
            for i, entry in enumerate(index["sets"])
        )
