"""Generated look-alikes of VisA, MVTec AD 2, MPDD and BTAD: our procedural scenes, written in each
data set's own layout, so every reader is tested end to end where the real data cannot be had.

The pictures come from the generated MVTec-layout set (memseg.data.synthetic: procedural scenes,
geometric defects, exact masks); each target category borrows one source scene, with its own seed
so that two targets of one source differ. What this module adds is each data set's layout:

    visa       split_csv/1cls.csv + <category>/Data/Images/{Normal,Anomaly}/*.JPG and
               <category>/Data/Masks/Anomaly/*.png whose defect pixels hold 1, 2, ... (one value per
               connected region, as VisA's do, so a reader that thresholds at 255 or at half the
               maximum loses defects)
    mvtec_ad2  train/good, validation/good, test_public/{good,bad,ground_truth/bad/*_mask.png},
               test_private/ and test_private_mixed/ (no ground truth)
    mpdd       MVTec AD's layout with MPDD's category names
    btad       01, 02, 03 with train/ok, test/ok, test/ko, ground_truth/ko; 01 and 03 store .bmp
               images, 02 .png; masks are .png except for 03 (.bmp)

A marker file, written last, says the folder is a complete generated set; a folder holding
anything else is refused, so real data is never overwritten.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from memseg.data.files import GOOD
from memseg.data.images import is_stray
from memseg.data.registry import check_categories, get_dataset
from memseg.data.synthetic import Sample, defect_types, render_sample
from memseg.data.types import DataError
from memseg.names import UnknownNameError

MARKER = ".memseg_lookalike.json"
LOOKALIKE_VERSION = 1

# The generated MVTec AD scene each target category borrows (chosen for a similar look).
SOURCES: dict[str, dict[str, str]] = {
    "visa": {
        "candle": "pill", "capsules": "capsule", "cashew": "hazelnut", "chewinggum": "pill",
        "fryum": "metal_nut", "macaroni1": "screw", "macaroni2": "screw", "pcb1": "transistor",
        "pcb2": "transistor", "pcb3": "transistor", "pcb4": "transistor", "pipe_fryum": "bottle",
    },
    "mvtec_ad2": {
        "can": "bottle", "fabric": "carpet", "fruit_jelly": "pill", "rice": "grid",
        "sheet_metal": "tile", "vial": "bottle", "wallplugs": "screw", "walnuts": "hazelnut",
    },
    "mpdd": {
        "bracket_black": "metal_nut", "bracket_brown": "metal_nut", "bracket_white": "metal_nut",
        "connector": "transistor", "metal_plate": "tile", "tubes": "cable",
    },
    "btad": {"01": "leather", "02": "wood", "03": "carpet"},
}  # fmt: skip
# BTAD stores its categories with different suffixes: (image suffix, mask suffix).
BTAD_SUFFIXES: dict[str, tuple[str, str]] = {"01": (".bmp", ".png"), "02": (".png", ".png"), "03": (".bmp", ".bmp")}

ProgressFn = Callable[[int, int], None]


def lookalike_kinds() -> tuple[str, ...]:
    return tuple(SOURCES)


def generate_like(
    dataset: str,
    out_dir: Path | str,
    categories: Sequence[str] | None = None,
    image_size: int = 64,
    n_train: int = 12,
    n_test_good: int = 4,
    n_test_defect_per_type: int = 2,
    seed: int = 0,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Write a look-alike of `dataset` to `out_dir` and return it. `categories` None means all of
    the data set's; each anomalous split gets `n_test_defect_per_type` images per defect type of
    the borrowed scene. A folder holding anything but a previous look-alike is refused."""
    categories = _check_request(dataset, categories, n_train, n_test_good, n_test_defect_per_type)
    out = _emptied_target(Path(out_dir), get_dataset(dataset).categories or ())

    writer = _WRITERS[dataset]
    counts = {c: (n_train, n_test_good, n_test_defect_per_type * len(defect_types(SOURCES[dataset][c]))) for c in categories}
    total = sum(a + b + c for a, b, c in counts.values())
    done = 0
    rows: list[tuple[str, str, str, str, str]] = []

    def step() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    for category in categories:
        samples = _Samples(dataset, category, image_size, seed)
        rows += writer(out, category, samples, n_train, n_test_good, n_test_defect_per_type, step)
    if dataset == "visa":
        split = out / "split_csv" / "1cls.csv"
        split.parent.mkdir(parents=True, exist_ok=True)
        with open(split, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("object", "split", "label", "image", "mask"), *rows])
    params = {
        "version": LOOKALIKE_VERSION, "dataset": dataset, "categories": list(categories), "image_size": image_size,
        "n_train": n_train, "n_test_good": n_test_good, "n_test_defect_per_type": n_test_defect_per_type, "seed": seed,
    }  # fmt: skip
    tmp = out / (MARKER + ".tmp")
    tmp.write_text(json.dumps(params, indent=1, sort_keys=True))
    os.replace(tmp, out / MARKER)
    return out


def _check_request(
    dataset: str, categories: Sequence[str] | None, n_train: int, n_test_good: int, n_test_defect_per_type: int
) -> tuple[str, ...]:
    """The categories asked for (None: all of the data set's), each once, after checking the data
    set has a look-alike generator, the names are its categories and every count is >= 1."""
    if dataset not in SOURCES:
        raise DataError(f"no look-alike generator for {dataset!r}", [f"valid: {', '.join(SOURCES)}"])
    names = tuple(dict.fromkeys(categories or get_dataset(dataset).categories or ()))
    try:
        check_categories(names, dataset=dataset)
    except UnknownNameError as err:
        raise DataError.unknown(err) from None
    for name, value in (
        ("n_train", n_train),
        ("n_test_good", n_test_good),
        ("n_test_defect_per_type", n_test_defect_per_type),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return names


def _emptied_target(out: Path, known_categories: Sequence[str]) -> Path:
    """`out`, created, without its marker or the folders a previous look-alike wrote there; a
    folder holding anything else is refused (`_check_target`)."""
    _check_target(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    for name in (*known_categories, "split_csv"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    return out


class _Samples:
    """The samples of one target category, drawn from its borrowed scene with a per-target seed."""

    def __init__(self, dataset: str, category: str, image_size: int, seed: int) -> None:
        self.source = SOURCES[dataset][category]
        self.image_size = image_size
        self.seed = seed * 1000 + sorted(SOURCES[dataset]).index(category) + 1

    def normal(self, split: str, index: int) -> Sample:
        return render_sample(self.source, GOOD, index, self.image_size, self.seed, split)

    def defects(self, per_type: int) -> list[tuple[str, Sample]]:
        return [
            (defect, render_sample(self.source, defect, index, self.image_size, self.seed, "test"))
            for defect in defect_types(self.source)
            for index in range(per_type)
        ]


def _save_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(image)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        pil.save(path, quality=95)
    else:
        pil.save(path)


def _save_mask(path: Path, mask: np.ndarray, values: str = "255") -> None:
    """0/255 masks, or with values="regions" one value per 8-connected region (1, 2, ...)."""
    if values == "regions":
        labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
        array = labels.astype(np.uint8)
    else:
        array = mask.astype(np.uint8) * 255
    _save_image(path, array)


def _write_good(samples: _Samples, split: str, count: int, folder: Path, name: str, step: Callable[[], None]) -> None:
    """Write `count` normal images of `split` into `folder`, file i named `name.format(i)`: the good
    images of every folder layout (MVTec AD 2, MPDD, BTAD) are written the same way."""
    for index in range(count):
        _save_image(folder / name.format(index), samples.normal(split, index).image)
        step()


def _write_visa(out: Path, category: str, samples: _Samples, n_train: int, n_good: int, per_type: int, step) -> list:
    rows = []
    for index in range(n_train + n_good):
        split = "train" if index < n_train else "test"
        relative = f"{category}/Data/Images/Normal/{index:04d}.JPG"
        _save_image(out / relative, samples.normal(split, index).image)
        rows.append((category, split, "normal", relative, ""))
        step()
    for index, (_, sample) in enumerate(samples.defects(per_type)):
        image, mask = (
            f"{category}/Data/Images/Anomaly/{index:03d}.JPG",
            f"{category}/Data/Masks/Anomaly/{index:03d}.png",
        )
        _save_image(out / image, sample.image)
        _save_mask(out / mask, sample.mask, values="regions")
        rows.append((category, "test", "anomaly", image, mask))
        step()
    return rows


def _write_mvtec_ad2(out: Path, category: str, samples: _Samples, n_train: int, n_good: int, per_type: int, step) -> list:
    folder = out / category
    _write_good(samples, "train", n_train, folder / "train" / "good", "{:03d}_regular.png", step)
    for index in range(max(1, n_train // 4)):
        _save_image(folder / "validation" / "good" / f"{index:03d}_regular.png", samples.normal("validation", index).image)
    _write_good(samples, "test", n_good, folder / "test_public" / "good", "{:03d}_regular.png", step)
    defects = samples.defects(per_type)
    for index, (_, sample) in enumerate(defects):
        _save_image(folder / "test_public" / "bad" / f"{index:03d}_regular.png", sample.image)
        _save_mask(folder / "test_public" / "ground_truth" / "bad" / f"{index:03d}_regular_mask.png", sample.mask)
        step()
    # The private test sets: images only, as in the real data (their ground truth is not published).
    _save_image(folder / "test_private" / "000_regular.png", samples.normal("private", 0).image)
    _save_image(folder / "test_private" / "001_regular.png", defects[0][1].image)
    _save_image(folder / "test_private_mixed" / "000_mixed.png", samples.normal("private_mixed", 0).image)
    return []


def _write_mpdd(out: Path, category: str, samples: _Samples, n_train: int, n_good: int, per_type: int, step) -> list:
    folder = out / category
    _write_good(samples, "train", n_train, folder / "train" / "good", "{:03d}.png", step)
    _write_good(samples, "test", n_good, folder / "test" / "good", "{:03d}.png", step)
    counters: dict[str, int] = {}
    for defect, sample in samples.defects(per_type):
        index = counters[defect] = counters.get(defect, -1) + 1
        _save_image(folder / "test" / defect / f"{index:03d}.png", sample.image)
        _save_mask(folder / "ground_truth" / defect / f"{index:03d}_mask.png", sample.mask)
        step()
    return []


def _write_btad(out: Path, category: str, samples: _Samples, n_train: int, n_good: int, per_type: int, step) -> list:
    folder = out / category
    image_suffix, mask_suffix = BTAD_SUFFIXES[category]
    _write_good(samples, "train", n_train, folder / "train" / "ok", "{:04d}" + image_suffix, step)
    _write_good(samples, "test", n_good, folder / "test" / "ok", "{:04d}" + image_suffix, step)
    for index, (_, sample) in enumerate(samples.defects(per_type)):
        _save_image(folder / "test" / "ko" / f"{index:04d}{image_suffix}", sample.image)
        _save_mask(folder / "ground_truth" / "ko" / f"{index:04d}{mask_suffix}", sample.mask)
        step()
    return []


_WRITERS = {"visa": _write_visa, "mvtec_ad2": _write_mvtec_ad2, "mpdd": _write_mpdd, "btad": _write_btad}


def _check_target(out: Path) -> None:
    """Refuse to write into a folder with content this module did not write."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError(f"{out} is a file; the look-alike generator needs a folder")
    if (out / MARKER).exists():
        return
    foreign = [p.name for p in sorted(out.iterdir()) if not is_stray(p)]
    if foreign:
        raise DataError(
            f"{out} already holds files the look-alike generator did not write (no {MARKER}); choose an empty or new folder",
            [f"found: {', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}"],
        )
