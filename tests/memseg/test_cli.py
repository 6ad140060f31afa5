"""`python -m memseg train|predict`: one JSON object with --json, a model directory that
`predict` turns into a heatmap and a score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from memseg.__main__ import main
from memseg.data.synthetic import generate


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, categories=("hazelnut",), image_size=64, n_train=12, n_test_good=3, n_test_defect_per_type=2)
    return root


def test_train_json_then_predict(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "train",
        "--data-root",
        str(data_root),
        "--dataset",
        "synthetic",
        "--category",
        "hazelnut",
        "--profile",
        "tiny",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "models"),
        "--json",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    result = json.loads(out)  # exactly one JSON object on stdout; progress went to stderr
    assert result["config"]["seed"] == 3 and result["config"]["category"] == "hazelnut"
    assert set(result["metrics"]) >= {"image_auroc", "pixel_auroc", "pixel_f1", "pixel_aupro"}
    assert "visuals" not in result["extras"]
    model_dir = Path(result["artefacts_dir"])
    assert (model_dir / "model.safetensors").is_file()

    image = next((data_root / "hazelnut" / "test").glob("*/000.png"))
    heatmap = tmp_path / "heat.png"
    assert main(["predict", "--model", str(model_dir), "--image", str(image), "--out", str(heatmap)]) == 0
    assert "anomaly score" in capsys.readouterr().out
    with Image.open(heatmap) as picture:
        assert picture.size == (64, 64) and picture.mode == "RGB"


def test_train_rejects_an_unknown_category_listing_the_valid_ones(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--data-root", str(data_root), "--category", "bottel", "--profile", "tiny"])
    assert code == 2
    assert "bottel" in capsys.readouterr().err


def test_predict_on_a_folder_that_is_no_model_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(tmp_path), "--image", "x.png", "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and str(tmp_path) in err and "Traceback" not in err


def test_train_flags_pick_the_profile_then_override_the_lr(tmp_path: Path) -> None:
    """--profile tootouch is revision 2's recipe; --lr overrides any profile's (the official
    comment's screw 0.08 is one flag away)."""
    from memseg.__main__ import build_parser, config_from_args

    common = ["train", "--data-root", str(tmp_path), "--category", "screw"]
    paper = config_from_args(build_parser().parse_args([*common, "--lr", "0.08"]))
    assert (paper.optimizer, paper.lr, paper.steps) == ("sgd", 0.08, 2701)
    tootouch = config_from_args(build_parser().parse_args([*common, "--profile", "tootouch"]))
    assert (tootouch.optimizer, tootouch.lr, tootouch.schedule, tootouch.focal_smooth) == ("adamw", 3e-3, "warmup_cosine", 0.0)
