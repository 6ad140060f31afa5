"""The files the official tools read: real tiny jobs on the MVTec AD 2 look-alike (its images at 80 px,
the model at 64, so every map is upsampled) keep their maps, predict the private test sets, and the
exports are checked file by file: layout, formats, original sizes and exact values."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from harness import map_export, maps_store, paths, store
from memseg import job as job_module
from memseg.config import JobConfig
from memseg.data.lookalike import generate_like
from memseg.data.registry import MVTEC_AD2_CATEGORIES
from memseg.metrics import upsample_map
from memseg.profiles import profile

pytestmark = pytest.mark.slow  # trains models
ORIGINAL = 80  # the look-alike's image size; the model runs at 64
SWEEP = "ad2"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Eight tiny jobs (1 step each), one per object, committed as the driver commits them."""
    base = tmp_path_factory.mktemp("export")
    root = generate_like("mvtec_ad2", base / "data", image_size=ORIGINAL, n_train=6, n_test_good=2, n_test_defect_per_type=1)
    results = base / "results"
    for category in MVTEC_AD2_CATEGORIES:
        values = profile("tiny") | {"category": category, "dataset": "mvtec_ad2", "data_root": str(root), "steps": 1}
        result = job_module.run(JobConfig.from_dict(values | {"predict_private": True, "save_maps": True}))
        store.commit(results, store.Attempt(SWEEP), result)
    return root, results


def test_the_row_holds_no_maps_and_the_maps_file_holds_every_split(results: tuple[Path, Path]) -> None:
    root, results_dir = results
    rows = store.load_results(results_dir, SWEEP)
    assert len(rows) == 8 and (rows["status"] == "ok").all()
    assert rows["seg_f1"].notna().all() and rows["pixel_aupro_low"].notna().all() and rows["pixel_threshold"].notna().all()
    sets = {s.split: s for s in maps_store.load_maps(results_dir, SWEEP, rows["job_id"].iloc[0])}
    assert set(sets) == {"test", "test_private", "test_private_mixed"}
    assert all(s.maps.dtype == np.float32 and s.maps.shape[1:] == (64, 64) for s in sets.values())
    assert all(size == (ORIGINAL, ORIGINAL) for s in sets.values() for size in s.sizes)


def test_the_submission_folder_file_by_file(results: tuple[Path, Path], tmp_path: Path) -> None:
    root, results_dir = results
    out = tmp_path / "submission"
    written = map_export.export(results_dir, SWEEP, "mvtec-ad2-submission", out)
    rows = store.load_results(results_dir, SWEEP)
    job_of = dict(zip(rows["category"], rows["job_id"]))
    threshold_of = dict(zip(rows["category"], rows["pixel_threshold"].astype(float)))
    expected: set[Path] = set()
    for category in MVTEC_AD2_CATEGORIES:
        sets = {s.split: s for s in maps_store.load_maps(results_dir, SWEEP, job_of[category])}
        for split in ("test_private", "test_private_mixed"):
            images = sorted((root / category / split).iterdir())
            assert images, (category, split)
            for image in images:
                stem = image.stem
                tiff = Path("anomaly_images") / category / split / f"{stem}.tiff"
                png = Path("anomaly_images_thresholded") / category / split / f"{stem}.png"
                expected |= {tiff, png}
                values = tifffile.imread(out / tiff)
                assert values.dtype == np.float16 and values.shape == (ORIGINAL, ORIGINAL)  # one channel, original size
                index = sets[split].paths.index(str(image))
                native = upsample_map(torch.from_numpy(sets[split].maps[index]), (ORIGINAL, ORIGINAL)).numpy()
                np.testing.assert_array_equal(values, native.astype(np.float16))
                with Image.open(out / png) as mask:
                    assert mask.mode == "L" and mask.size == (ORIGINAL, ORIGINAL)
                    binary = np.asarray(mask)
                assert set(np.unique(binary)) <= {0, 255}
                threshold = threshold_of[category]
                np.testing.assert_array_equal(binary, np.where(native >= threshold, 255, 0))
    found = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert found == expected and written.files == len(expected)  # exactly one file per private image, nothing else


def test_mvtec_maps_are_float32_at_original_size_with_the_native_maps_exact_values(
    results: tuple[Path, Path], tmp_path: Path
) -> None:
    root, results_dir = results
    out = tmp_path / "maps"
    map_export.export(results_dir, SWEEP, "mvtec-maps", out)
    rows = store.load_results(results_dir, SWEEP)
    total = 0
    for job_id, category in zip(rows["job_id"], rows["category"]):
        (test,) = [s for s in maps_store.load_maps(results_dir, SWEEP, job_id) if s.split == "test"]
        for i, (path, defect) in enumerate(zip(test.paths, test.defect_types)):
            values = tifffile.imread(out / category / "test" / defect / f"{Path(path).stem}.tiff")
            assert values.dtype == np.float32 and values.shape == (ORIGINAL, ORIGINAL)
            native = upsample_map(torch.from_numpy(test.maps[i]), (ORIGINAL, ORIGINAL)).numpy()
            np.testing.assert_array_equal(values, native)  # bit for bit what native evaluation scores
            total += 1
    assert total == sum(1 for p in out.rglob("*.tiff"))


def test_a_sweep_lacking_an_object_or_maps_is_refused_naming_it(results: tuple[Path, Path], tmp_path: Path) -> None:
    root, results_dir = results
    rows = store.load_results(results_dir, SWEEP)
    partial = tmp_path / "results"
    for job_id in rows["job_id"][:-1]:  # all but the last object
        for folder in ("jobs", "scores", "curves", "maps"):  # a committed job: its row and every file it links
            source = paths.sweep_dir(results_dir, SWEEP) / folder
            for file in source.glob(f"{job_id}*"):
                target = paths.sweep_dir(partial, SWEEP) / folder / file.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.read_bytes())
    lacking = rows["category"].iloc[-1]
    with pytest.raises(map_export.ExportError, match=f"lacks {lacking}"):
        map_export.export(partial, SWEEP, "mvtec-ad2-submission", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before the first file
    # a job that kept no maps
    (paths.sweep_dir(partial, SWEEP) / "maps" / f"{rows['job_id'].iloc[0]}.npz").unlink()
    with pytest.raises(map_export.ExportError, match="kept no anomaly maps: run the sweep again with --save-maps"):
        map_export.export(partial, SWEEP, "mvtec-maps", tmp_path / "out2")
    with pytest.raises(map_export.ExportError, match="not an empty folder"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        map_export.export(results_dir, SWEEP, "mvtec-maps", tmp_path / "full")


def test_without_save_maps_a_job_keeps_none(tmp_path: Path) -> None:
    root = generate_like("mvtec_ad2", tmp_path / "d", ["can"], image_size=64, n_train=6, n_test_good=2, n_test_defect_per_type=1)
    values = profile("tiny") | {"category": "can", "dataset": "mvtec_ad2", "data_root": str(root), "steps": 1}
    result = job_module.run(JobConfig.from_dict(values))
    assert result.maps == () and math.isfinite(result.metrics["seg_f1"])
    with pytest.raises(ValueError, match="predict_private is for MVTec AD 2"):
        JobConfig("bottle", predict_private=True)
    assert JobConfig("can", dataset="mvtec_ad2", predict_private=True).job_id == JobConfig("can", dataset="mvtec_ad2").job_id


def test_harness_export_from_the_command_line(results: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    from harness.__main__ import main

    root, results_dir = results
    out = tmp_path / "cli"
    argv = ["export", SWEEP, "--results", str(results_dir), "--to", "mvtec-ad2-submission", "--out", str(out)]
    assert main(argv) == 0
    assert "file(s) from 8 job(s)" in capsys.readouterr().out and (out / "anomaly_images").is_dir()
    assert main(["export", SWEEP, "--results", str(results_dir), "--to", "mvtec-maps"]) == 2  # no --out
    assert "--out DIR" in capsys.readouterr().err
    assert main(["export", SWEEP, "--results", str(results_dir), "--to", "mvtec-maps", "--out", str(out)]) == 2  # not empty
    assert "not an empty folder" in capsys.readouterr().err


def test_a_damaged_job_is_left_out_and_named_beside_the_files_or_the_refusal(
    results: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    """A job whose scores file is garbage is not counted by the one reader: `mvtec-maps` writes the
    other seven and names it in a warning; the submission, which needs all eight objects, is refused
    for the object it lacks and lists the damaged job as the reason it is not counted."""
    from harness.__main__ import main

    _, results_dir = results
    hurt = Path(shutil.copytree(results_dir, tmp_path / "results"))
    rows = store.load_results(hurt, SWEEP)
    job_id, category = rows["job_id"].iloc[0], rows["category"].iloc[0]
    paths.scores_path(hurt, SWEEP, job_id).write_bytes(b"\x00 not parquet")
    written = map_export.export(hurt, SWEEP, "mvtec-maps", tmp_path / "maps")
    assert len(written.jobs) == 7 and job_id not in written.jobs and not (tmp_path / "maps" / category).exists()
    assert [n for n in written.notes if job_id in n and "unreadable" in n], written.notes
    argv = ["export", SWEEP, "--results", str(hurt), "--to", "mvtec-maps", "--out", str(tmp_path / "cli")]
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "from 7 job(s)" in out and f"warning: not exported: job {job_id}" in out
    with pytest.raises(map_export.ExportError, match=f"lacks {category}") as refused:
        map_export.export(hurt, SWEEP, "mvtec-ad2-submission", tmp_path / "out")
    assert any(p.startswith(f"not counted: job {job_id}") for p in refused.value.problems), refused.value.problems
