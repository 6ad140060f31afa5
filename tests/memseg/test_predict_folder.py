"""`python -m memseg predict --images FOLDER|GLOB`: one CSV row per image (score, anomalous yes/no at
the threshold the model directory carries, heatmap path), a heatmap each, and the rule that made the
threshold said; a model without thresholds leaves the verdict empty and says why."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from memseg import job as job_module
from memseg.__main__ import CSV_COLUMNS, main
from memseg.config import JobConfig
from memseg.data.synthetic import generate
from memseg.profiles import profile

pytestmark = pytest.mark.slow  # trains models


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(data root, model dir with thresholds, model dir without), tiny models of 2 steps."""
    base = tmp_path_factory.mktemp("predict")
    root = base / "data"
    generate(root, categories=("bottle",), image_size=64, n_train=12, n_test_good=2, n_test_defect_per_type=1, seed=0)
    values = profile("tiny") | {"category": "bottle", "data_root": str(root), "dataset": "synthetic", "steps": 2}
    calibrated = job_module.run(JobConfig.from_dict(values | {"calibrate_images": 3, "out_dir": str(base / "a")}))
    plain = job_module.run(JobConfig.from_dict(values | {"out_dir": str(base / "b")}))
    assert calibrated.artefacts_dir and plain.artefacts_dir
    return root, Path(calibrated.artefacts_dir), Path(plain.artefacts_dir)


def _read(out: Path) -> list[dict[str, str]]:
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def test_a_folder_gets_one_row_per_image_with_the_calibrated_verdict(trained, tmp_path: Path, capsys) -> None:
    root, model_dir, _ = trained
    folder = tmp_path / "images"
    shutil.copytree(root / "bottle" / "test" / "good", folder)
    for i, image in enumerate(sorted((root / "bottle" / "test").glob("[!g]*/*.png"))):
        shutil.copy(image, folder / f"defect_{i}.png")
    (folder / ".DS_Store").write_text("")  # a stray file: skipped
    thresholds = json.loads((model_dir / "thresholds.json").read_text())
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model_dir), "--images", str(folder), "--out", str(out), "--batch-size", "2"]) == 0
    rows = _read(out)
    images = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    assert [r["path"] for r in rows] == [str(p) for p in images]
    for row in rows:
        assert row["anomalous"] == ("yes" if float(row["score"]) >= thresholds["image"] else "no")
        assert Path(row["heatmap"]).is_file() and Path(row["heatmap"]).parent == out / "heatmaps"
    said = capsys.readouterr().out
    assert "mean + 3 std (population)" in said and "the last 3 normal training images" in said


def test_a_glob_and_a_model_without_thresholds(trained, tmp_path: Path, capsys) -> None:
    root, _, plain_dir = trained
    out = tmp_path / "out"
    pattern = str(root / "bottle" / "test" / "*" / "*.png")
    assert main(["predict", "--model", str(plain_dir), "--images", pattern, "--out", str(out)]) == 0
    rows = _read(out)
    assert len(rows) == len(list((root / "bottle" / "test").glob("*/*.png"))) and all(r["anomalous"] == "" for r in rows)
    assert len({r["heatmap"] for r in rows}) == len(rows)  # same stems in several folders: numbered, never overwritten
    assert "carries no calibrated threshold" in capsys.readouterr().out


def test_no_images_is_one_clear_line(trained, tmp_path: Path, capsys) -> None:
    _, model_dir, _ = trained
    (tmp_path / "empty").mkdir()
    assert main(["predict", "--model", str(model_dir), "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no image found" in capsys.readouterr().err
    assert main(["predict", "--model", str(model_dir), "--images", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
