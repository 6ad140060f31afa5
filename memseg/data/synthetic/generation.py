"""Generating the synthetic data set: all 15 MVTec AD categories drawn procedurally, in MVTec AD's layout.

It exists so that the benchmark, its tests and demos run where MVTec AD cannot be downloaded.
Normal samples vary (pose, colour, lighting, sensor noise); defects are drawn geometrically
(strokes, polygons, ellipses, missing and displaced parts, colour shifts), never with the Perlin
mask recipe that MemSeg's training-time anomaly simulation uses, so the benchmark does not test
that recipe against itself. Each mask is exact: it marks precisely the pixels the defect changed
(by more than CHANGE_THRESHOLD), and every other pixel equals the normal rendering of the sample.

    <out>/<category>/train/good/000.png
    <out>/<category>/test/good/000.png
    <out>/<category>/test/<defect_type>/000.png
    <out>/<category>/ground_truth/<defect_type>/000_mask.png     (L mode, 0/255)
    <out>/.memseg_synthetic.json                                  written last: the set is complete
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from memseg.atomic import write_text_atomic
from memseg.data.images import is_stray
from memseg.data.registry import SYNTHETIC_TRAIN_IMAGES
from memseg.data.synthetic.defects import Scene
from memseg.data.synthetic.drawing import grid
from memseg.data.synthetic.registry import category_spec, defect_types, is_grey
from memseg.data.types import DataError
from memseg.names import CATEGORIES

GENERATOR_VERSION = 1  # bump when the drawings change, so ensure_synthetic regenerates old sets
MARKER = ".memseg_synthetic.json"  # the generation parameters, written when the set is complete
IN_PROGRESS = ".memseg_synthetic.partial"  # present while a set is being (re)written
GOOD = "good"
CHANGE_THRESHOLD = 0.08  # a defect pixel differs from the normal rendering by more than this (of 1)
AREA_RANGE = (0.002, 0.12)  # accepted defect area, as a fraction of the image
MAX_TRIES = 12  # redraws of a defect whose area falls outside AREA_RANGE
NOISE_STD = 0.01  # sensor noise, shared by a sample's normal and defective rendering

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Sample:
    """One generated image: `image` (S, S, 3) uint8 RGB, `mask` (S, S) bool, and `normal`, the
    same sample rendered without its defect (equal to `image` outside the mask)."""

    image: np.ndarray
    mask: np.ndarray
    normal: np.ndarray


def render_sample(
    category: str, defect_type: str, index: int, image_size: int = 128, seed: int = 0, split: str = "test"
) -> Sample:
    """Draw sample `index` of `split`/`defect_type` ("good" for normal). Deterministic: each sample
    has its own generator seeded by (seed, category, split, defect type, index), so a sample does
    not depend on how many others are drawn or in what order."""
    spec = category_spec(category)
    if defect_type != GOOD and defect_type not in spec.defects:
        raise ValueError(f"unknown defect type {defect_type!r} for {category}; valid: {', '.join(spec.defects)}")
    rng = np.random.default_rng([seed, _key(category), _key(f"{split}/{defect_type}"), index])
    scene = spec.scene(rng, image_size)
    light = _lighting(rng, image_size)
    noise = rng.normal(0.0, NOISE_STD, (image_size, image_size, 1)).astype(np.float32)

    def finish(image: np.ndarray) -> np.ndarray:
        """What is stored: grey if the category is grey, lit, noisy, 8-bit."""
        return _quantise(_view(np.clip(image, 0.0, 1.0), spec.grey) * light + noise)

    normal = finish(scene.image)
    if defect_type == GOOD:
        return Sample(normal, np.zeros((image_size, image_size), dtype=bool), normal)
    drawn, mask = _draw_defect(scene, spec.defects[defect_type], rng, finish, normal, f"{category}/{defect_type}")
    # Outside the mask the image IS the normal rendering, bit for bit.
    return Sample(np.where(mask[:, :, None], drawn, normal), mask, normal)


def generate(
    out_dir: Path | str,
    categories: Sequence[str] = CATEGORIES,
    image_size: int = 128,
    n_train: int = SYNTHETIC_TRAIN_IMAGES,
    n_test_good: int = 10,
    n_test_defect_per_type: int = 7,
    seed: int = 0,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Write the data set to `out_dir` and return it. A folder that holds anything the generator
    did not write is refused (DataError), so a real data set is never overwritten; a previous
    generated set there is replaced. on_progress(done, total) is called per image."""
    out = Path(out_dir)
    params = _params(categories, image_size, n_train, n_test_good, n_test_defect_per_type, seed)
    _check_target(out)
    out.mkdir(parents=True, exist_ok=True)
    return _write(out, params, CATEGORIES, on_progress)


def _write(out: Path, params: dict[str, Any], replaced: Sequence[str], on_progress: ProgressFn | None) -> Path:
    """Draw the categories of `params` that are in `replaced` into `out` (their old folders removed
    first), then mark the set complete with `params`. The marker goes while this runs, so an
    interrupted write is regenerated whole by the next `ensure_synthetic`."""
    (out / IN_PROGRESS).write_text(json.dumps(params, indent=1))
    (out / MARKER).unlink(missing_ok=True)
    for name in replaced:
        if (out / name).is_dir():
            shutil.rmtree(out / name)

    plan = [
        (category, split, defect, index)
        for category in params["categories"]
        if category in replaced
        for split, defect, count in (
            ("train", GOOD, params["n_train"]),
            ("test", GOOD, params["n_test_good"]),
            *(("test", d, params["n_test_defect_per_type"]) for d in defect_types(category)),
        )
        for index in range(count)
    ]
    for done, (category, split, defect, index) in enumerate(plan, start=1):
        sample = render_sample(category, defect, index, params["image_size"], params["seed"], split)
        _save(out / category, split, defect, index, sample, is_grey(category))
        if on_progress is not None:
            on_progress(done, len(plan))

    write_text_atomic(out / MARKER, json.dumps(params, indent=1, sort_keys=True))
    (out / IN_PROGRESS).unlink()
    return out


def ensure_synthetic(
    root: Path | str,
    image_size: int = 128,
    seed: int = 0,
    categories: Sequence[str] = CATEGORIES,
    n_train: int = SYNTHETIC_TRAIN_IMAGES,
    n_test_good: int = 10,
    n_test_defect_per_type: int = 7,
    on_progress: ProgressFn | None = None,
) -> Path:
    """The generated set at `root` with at least `categories`: generated whole if it is missing,
    half-written (no marker) or was generated with other parameters; else only the categories it
    lacks are drawn and added (a sample does not depend on the other categories, so the images are
    those a whole generation gives). A run of one category draws that one, not all 15."""
    root = Path(root)
    wanted = _params(categories, image_size, n_train, n_test_good, n_test_defect_per_type, seed)
    found = read_marker(root)
    if found is not None and not (root / IN_PROGRESS).exists():
        same = all(found.get(k) == v for k, v in wanted.items() if k != "categories")
        have = set(found.get("categories", ()))
        if same and set(wanted["categories"]) <= have:
            return root
        if same:
            union = [c for c in CATEGORIES if c in have or c in wanted["categories"]]
            return _write(root, {**wanted, "categories": union}, [c for c in union if c not in have], on_progress)
    return generate(root, categories, image_size, n_train, n_test_good, n_test_defect_per_type, seed, on_progress)


def read_marker(root: Path | str) -> dict[str, Any] | None:
    """The parameters a complete generated set at `root` was made with, or None."""
    path = Path(root) / MARKER
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable generation marker ({exc}); delete it to regenerate") from exc
    return data if isinstance(data, dict) else None


def _key(text: str) -> int:
    """A stable (not per-process, unlike hash()) integer for seeding."""
    return zlib.crc32(text.encode())


def _params(
    categories: Sequence[str], image_size: int, n_train: int, n_test_good: int, n_defect: int, seed: int
) -> dict[str, Any]:
    if isinstance(categories, str):
        categories = [categories]
    for category in categories:
        category_spec(category)
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}")
    for name, value in (("n_train", n_train), ("n_test_good", n_test_good), ("n_test_defect_per_type", n_defect)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return {
        "generator_version": GENERATOR_VERSION,
        "categories": list(dict.fromkeys(categories)),
        "image_size": image_size,
        "n_train": n_train,
        "n_test_good": n_test_good,
        "n_test_defect_per_type": n_defect,
        "seed": seed,
    }


def _check_target(out: Path) -> None:
    """Refuse to write into a folder with content the generator did not write."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError(f"{out} is a file; the generator needs a folder to write the data set to")
    if (out / MARKER).exists() or (out / IN_PROGRESS).exists():
        return
    foreign = [p.name for p in sorted(out.iterdir()) if not is_stray(p)]
    if foreign:
        raise DataError(
            f"{out} already holds files the generator did not write (no {MARKER}); choose an empty or new "
            "folder, or delete this one if it is an old generated set",
            [f"found: {', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}"],
        )


def _view(image: np.ndarray, grey: bool) -> np.ndarray:
    """The image as it will be stored: grey categories become equal-channel grey."""
    if not grey:
        return image
    return np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)


def _draw_defect(
    scene: Scene,
    defect_fn: Callable[[Scene, np.random.Generator], tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    finish: Callable[[np.ndarray], np.ndarray],
    normal: np.ndarray,
    name: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a defect until its area is within AREA_RANGE (else keep the closest non-empty draw).
    Returns (the finished defect drawing, its mask): the mask is exactly the pixels of the region
    the defect drew whose stored value changed by more than CHANGE_THRESHOLD."""
    low, high = AREA_RANGE
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(MAX_TRIES):
        drawn, region = defect_fn(scene, rng)
        drawn = finish(drawn)
        change = np.abs(drawn.astype(np.int16) - normal.astype(np.int16)).max(axis=2)
        mask = region & (change > CHANGE_THRESHOLD * 255)
        area = float(mask.mean())
        if area > 0:
            distance = max(low - area, area - high, 0.0)
            if best is None or distance < best[0]:
                best = (distance, drawn, mask)
            if distance == 0.0:
                break
    if best is None:
        raise RuntimeError(f"{name}: the generator drew {MAX_TRIES} empty defects (a bug in its drawing)")
    return best[1], best[2]


def _lighting(rng: np.random.Generator, size: int) -> np.ndarray:
    """A per-sample illumination field: overall brightness and a gentle linear gradient."""
    x, y = grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    field = rng.uniform(0.95, 1.05) * (1.0 + rng.uniform(0.0, 0.04) * (np.cos(angle) * x + np.sin(angle) * y))
    return field[:, :, None].astype(np.float32)


def _quantise(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _save(folder: Path, split: str, defect: str, index: int, sample: Sample, grey: bool) -> None:
    name = f"{index:03d}"
    image_dir = folder / split / defect
    image_dir.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(sample.image[:, :, 0]) if grey else Image.fromarray(sample.image)
    image.save(image_dir / f"{name}.png", compress_level=1)
    if defect != GOOD:
        mask_dir = folder / "ground_truth" / defect
        mask_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.mask.astype(np.uint8) * 255).save(mask_dir / f"{name}_mask.png", compress_level=1)
