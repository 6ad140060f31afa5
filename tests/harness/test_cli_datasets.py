"""The data sets beyond MVTec AD through the command line: `data synth --like`, `data check
--dataset` on each generated layout (and on a copy with one mask removed), `data download` of
local archives with the licence shown first, `run --dataset ... --all-categories`, the sweep
files, and the summary table naming the dataset."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from harness import report
from harness.__main__ import main
from harness.sweep import SweepSpec, load_sweep, parse_categories
from memseg.data.registry import get_dataset
from memseg.names import CATEGORIES

SMALL = ["--image-size", "32", "--n-train", "4", "--n-test-good", "2", "--n-defect", "1"]
REPO = Path(__file__).resolve().parents[2]
# dataset -> (categories, a mask to remove (relative to the root), the file the check must name)
CASES = {
    "visa": ("candle", "candle/Data/Masks/Anomaly/000.png", "candle/Data/Masks/Anomaly/000.png"),
    "mvtec_ad2": (
        "can",
        "can/test_public/ground_truth/bad/000_regular_mask.png",
        "can/test_public/bad/000_regular.png",
    ),
    "mpdd": ("tubes", "tubes/ground_truth/cable_swap/000_mask.png", "tubes/test/cable_swap/000.png"),
    "btad": ("03", "03/ground_truth/ko/0000.bmp", "03/test/ko/0000.bmp"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    """dataset -> a look-alike written by `harness data synth --like`."""
    made: dict[str, Path] = {}

    def get(dataset: str) -> Path:
        if dataset not in made:
            root = tmp_path_factory.mktemp(dataset) / "data"
            assert main(["data", "synth", "--like", dataset, "--out", str(root), "--categories", CASES[dataset][0], *SMALL]) == 0
            made[dataset] = root
        return made[dataset]

    return get


@pytest.mark.parametrize("dataset", list(CASES))
def test_check_passes_on_each_generated_layout_and_names_the_file_without_its_mask(dataset, generated, tmp_path, capsys):
    root = generated(dataset)
    capsys.readouterr()
    assert main(["data", "check", "--dataset", dataset, "--data-root", str(root)]) == 0
    text = capsys.readouterr().out
    assert "OK: 1 categories, no problems" in text and CASES[dataset][0] in text

    copy = Path(shutil.copytree(root, tmp_path / "copy"))
    (copy / CASES[dataset][1]).unlink()
    assert main(["data", "check", "--dataset", dataset, "--data-root", str(copy)]) == 1
    text = capsys.readouterr().out.replace("\n", "")
    assert str(copy / CASES[dataset][2]) in text and "problem(s):" in text


def test_private_test_sets_are_refused_by_check(generated, capsys):
    root = generated("mvtec_ad2")
    assert (
        main(["data", "check", "--dataset", "mvtec_ad2", "--data-root", str(root), "--test-set", "test_private"]) == 2
    )  # a user error: exit 2
    text = capsys.readouterr().err.replace("\n", " ")
    assert "cannot be evaluated here: it has no ground truth" in text and "benchmark.mvtec.com" in text
    assert main(["data", "check", "--dataset", "mvtec_ad2", "--data-root", str(root), "--test-set", "test_public"]) == 0


def test_download_shows_the_licence_first_then_fetches_or_explains(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["data", "download", "mpdd", "--out", str(tmp_path / "mpdd")]) == 2  # a user error: exit 2
    captured = capsys.readouterr()
    assert "CC BY-NC-SA 4.0" in captured.out  # the licence first, on the screen
    assert "cannot be downloaded automatically" in captured.err and "stepanje/MPDD" in captured.err

    archive = tmp_path / "src" / "VisA_20220922.tar"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tar:
        data = b"object,split,label,image,mask\n"
        info = tarfile.TarInfo("split_csv/1cls.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("candle")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    argv = ["data", "download", "visa", "--out", str(tmp_path / "visa"), "--url", archive.as_uri(), "--sha256", digest]
    assert main(argv) == 2  # the licence must be accepted, and stdin is not a terminal: a user error
    refused = capsys.readouterr()
    assert "CC BY 4.0" in refused.out and "--yes" in refused.err
    assert main([*argv, "--yes"]) == 0
    text = capsys.readouterr().out.replace("\n", "")
    assert "data check --dataset visa" in text and (tmp_path / "visa" / "split_csv" / "1cls.csv").is_file()


def test_all_categories_and_sweep_files_follow_the_dataset(cli, tmp_path, capsys):
    argv = [
        "run",
        "--results",
        str(tmp_path),
        "--profile",
        "tiny",
        "--dataset",
        "visa",
        "--data-root",
        str(tmp_path),
        "--all-categories",
        "--dry-run",
    ]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "sweep tiny-visa: 12 jobs" in out and "pipe_fryum" in out
    assert (
        cli(
            [
                "run",
                "--results",
                str(tmp_path),
                "--profile",
                "tiny",
                "--dataset",
                "btad",
                "--categories",
                "bottle",
                "--data-root",
                str(tmp_path),
                "--dry-run",
            ]
        )
        == 2
    )
    assert "unknown categories ['bottle']; valid: all, 01, 02, 03" in capsys.readouterr().err.replace("\n", " ")
    assert parse_categories("all") == CATEGORIES and parse_categories("all", "mpdd") == get_dataset("mpdd").categories
    with pytest.raises(ValueError, match="names its own categories"):
        parse_categories("all", "folder")
    for dataset in ("visa", "mvtec_ad2", "mpdd", "btad"):
        spec = load_sweep(REPO / "jobs" / f"{dataset}.yaml")
        assert spec.dataset == dataset and spec.categories == get_dataset(dataset).categories


def test_summary_names_the_dataset_and_shows_no_invented_reference():
    rows = pd.DataFrame(
        [
            {
                "job_id": f"{c}-x",
                "category": c,
                "seed": 0,
                "ablation": "full",
                "status": "ok",
                "dataset": "visa",
                "image_auroc": 0.8,
                "pixel_auroc": 0.9,
                "pixel_f1": 0.3,
                "pixel_aupro": 0.5,
                "train_steps_per_s": 1.0,
                "infer_images_per_s": 10.0,
                "attempts": 1,
                "error": "",
            }
            for c in ("candle", "pcb1")
        ]
    )
    (table,) = report.summary_tables(rows, "s")
    assert table.title == "s · VisA · full"
    assert "paper img" not in table.headers and "not shown" in table.caption and "VisA" in table.caption
    assert SweepSpec(categories=("candle",), dataset="visa").dataset == "visa"


def test_each_row_records_the_dataset_and_its_settings():
    import json

    from harness import store
    from memseg.config import JobConfig

    config = JobConfig(category="candle", dataset="visa", data_root="/data/visa")
    row = store.row_from_failure(store.Attempt("s", "tiny", attempts=1, recorded_at="now"), config, "x")
    assert row["dataset"] == "visa"
    # The resolved settings have their own columns (no MVTec AD row for a VisA category) ...
    assert (row["memory_size"], row["di_scale"], row["feature_scale"], row["foreground_mask"]) == (30, 100.0, 100.0, False)
    # ... and dataset_settings the data set's extras and which rule decided the foreground mask.
    assert json.loads(row["dataset_settings"]) == {
        "foreground_mask_rule": "dataset default",
        "masks": "nonzero",
        "test_set": "split_csv/1cls.csv test rows",
        "unused": "split_csv/2cls_*.csv",
    }
