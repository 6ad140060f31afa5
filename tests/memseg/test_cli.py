"""`python -m memseg train|predict`: one JSON object with --json, a model directory that
`predict` turns into a heatmap and a score."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
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
        "--val-every",
        "2",
        "--val-images",
        "2",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    result = json.loads(out)  # exactly one JSON object on stdout; progress went to stderr
    assert result["config"]["seed"] == 3 and result["config"]["category"] == "hazelnut"
    # the validation curve (every 2 of the 4 steps) is in the JSON and saved beside the model
    assert result["curves"]["val_steps"] == [2, 4] and len(result["curves"]["validation"]["image_auroc"]) == 2
    saved = json.loads((Path(result["artefacts_dir"]) / "curves.json").read_text())
    assert saved["val_steps"] == [2, 4] and saved["job_id"] == result["job_id"]
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


@pytest.fixture(scope="module")
def trained(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny model trained with a validation curve, and what `train` printed on stdout."""
    out = tmp_path_factory.mktemp("model")
    args = ["train", "--data-root", str(data_root), "--dataset", "synthetic", "--category", "hazelnut", "--profile", "tiny"]
    with contextlib.redirect_stdout(io.StringIO()) as printed, contextlib.redirect_stderr(io.StringIO()):
        assert main([*args, "--out", str(out), "--val-every", "2", "--val-images", "2"]) == 0
    return next(out.iterdir()), printed.getvalue()


def test_train_with_val_every_shows_the_validation_curve(trained: tuple[Path, str]) -> None:
    shown = " ".join(trained[1].split())
    assert "validation on simulated anomalies" in shown and "never a test score" in shown
    assert "2 of 2 points" in shown


def _predict(model: Path, image: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["predict", "--model", str(model), "--image", str(image), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def _score(printed: str) -> float:
    return float(printed.split("anomaly score ")[1].split(";")[0])


def test_predict_reads_16bit_images_by_the_high_byte(trained, data_root: Path, tmp_path: Path, capsys) -> None:
    """A 16-bit picture of an 8-bit image (each value v stored as v * 257, as a camera's 16-bit
    export of it would be) scores exactly as the 8-bit image, grey and colour alike."""
    from tests.memseg.data.test_images import png16_rgb

    model = trained[0]
    source = next((data_root / "hazelnut" / "test").glob("*/000.png"))
    rgb = np.asarray(Image.open(source).convert("RGB"))
    grey = np.asarray(Image.open(source).convert("L"))
    Image.fromarray(rgb).save(tmp_path / "rgb8.png")
    Image.fromarray(grey).save(tmp_path / "grey8.png")
    png16_rgb(tmp_path / "rgb16.png", rgb.astype(np.uint16) * 257)
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    scores = {}
    for name in ("rgb8", "rgb16", "grey8", "grey16"):
        code, printed, err = _predict(model, tmp_path / f"{name}.png", tmp_path / f"{name}-heat.png", capsys)
        assert code == 0, err
        scores[name] = _score(printed)
    assert scores["rgb16"] == scores["rgb8"] and scores["grey16"] == scores["grey8"]


def test_predict_mistakes_are_one_line_and_exit_2(trained, data_root: Path, tmp_path: Path, capsys) -> None:
    model, image = trained[0], next((data_root / "hazelnut" / "test").glob("*/000.png"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    for out, named in (
        (tmp_path / "folder", "is a folder"),
        (tmp_path / "heat.txt", "expected a .png file name"),
        (tmp_path / "a_file" / "heat.png", "is a file, not a folder"),
    ):
        code, _, err = _predict(model, image, out, capsys)
        assert code == 2 and named in err and str(out) in err and "Traceback" not in err, err
    damaged = tmp_path / "damaged"
    shutil.copytree(model, damaged)
    (damaged / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    code, _, err = _predict(damaged, image, tmp_path / "o.png", capsys)
    assert code == 2 and "damaged or not a safetensors file" in err and "Traceback" not in err, err
    Image.fromarray(np.full((64, 64), 0.5, np.float32), mode="F").save(tmp_path / "float.tif")
    code, _, err = _predict(model, tmp_path / "float.tif", tmp_path / "o.png", capsys)
    assert code == 2 and "floating-point pixels" in err and "Traceback" not in err, err
