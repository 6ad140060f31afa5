"""`python -m harness data synth|check|download`, run in-process through the real parser."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from harness.__main__ import main
from harness.cli_data import parse_categories

SMALL = ["--image-size", "64", "--n-train", "6", "--n-test-good", "3", "--n-defect", "2"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "synth"
    assert main(["data", "synth", "--out", str(root), "--categories", "bottle,screw", *SMALL]) == 0
    return root


def test_parse_categories():
    assert parse_categories("bottle, grid,bottle") == ("bottle", "grid")
    assert parse_categories("all") is None and parse_categories("") is None


def test_synth_writes_and_reports(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["data", "synth", "--out", str(out), "--categories", "pill", *SMALL, "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert str(out) in text and "pill" in text and "wrote 15 images" in text
    assert len(list((out / "pill" / "train" / "good").glob("*.png"))) == 6


def test_synth_then_check_passes(synth_root, capsys):
    assert main(["data", "check", "--data-root", str(synth_root), "--dataset", "synthetic"]) == 0
    text = capsys.readouterr().out
    assert "bottle" in text and "screw" in text and "OK" in text and "problem(s):" not in text


def test_check_fails_naming_the_image_whose_mask_is_gone(synth_root, tmp_path, capsys):
    copy = Path(shutil.copytree(synth_root, tmp_path / "copy"))
    defect = sorted(p.name for p in (copy / "screw" / "ground_truth").iterdir())[0]
    (copy / "screw" / "ground_truth" / defect / "001_mask.png").unlink()
    (copy / "bottle" / "train" / "good" / ".DS_Store").write_bytes(b"\x00")
    capsys.readouterr()
    assert main(["data", "check", "--data-root", str(copy), "--dataset", "synthetic", "--categories", "bottle,screw"]) == 1
    text = capsys.readouterr().out
    assert str(copy / "screw" / "test" / defect / "001.png") in text and "without a mask" in text
    assert ".DS_Store" in text and "ignored" in text


def test_check_missing_root_and_unknown_category(tmp_path, synth_root, capsys):
    assert main(["data", "check", "--data-root", str(tmp_path / "none")]) == 2  # cannot check: a user error
    assert str(tmp_path / "none") in capsys.readouterr().err
    assert main(["data", "check", "--data-root", str(synth_root), "--categories", "bottel"]) == 2
    assert "valid categories" in capsys.readouterr().err


def test_synth_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path / "mine"), "--categories", "pill", *SMALL]) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--categories", "bottel", *SMALL]) == 2


def archive_with(tmp_path: Path, name: str, files: dict[str, bytes]) -> tuple[str, str]:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_mvtec_needs_consent(tmp_path, monkeypatch, capsys):
    url, digest = archive_with(tmp_path, "m.tar.gz", {"bottle/train/good/000.png": b"png"})
    args = ["data", "download", "mvtec", "--out", str(tmp_path / "out"), "--url", url, "--sha256", digest]
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(args) == 2  # no consent possible: a user error
    captured = capsys.readouterr()
    assert "CC BY-NC-SA 4.0" in captured.out and "--yes" in captured.err
    assert not (tmp_path / "out" / "bottle").exists()

    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    assert main(args) == 1 and not (tmp_path / "out" / "bottle").exists()
    monkeypatch.setattr(sys, "stdin", Tty("y\n"))
    assert main(args) == 0 and (tmp_path / "out" / "bottle" / "train" / "good" / "000.png").exists()


def test_download_with_yes_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    url, digest = archive_with(tmp_path, "d.tar.gz", {"dtd/images/banded/b.jpg": b"jpg"})
    assert main(["data", "download", "dtd", "--out", str(tmp_path / "out"), "--url", url, "--sha256", digest]) == 0
    assert "ready in" in capsys.readouterr().out
    assert (tmp_path / "out" / "dtd" / "images" / "banded" / "b.jpg").exists()

    missing = (tmp_path / "gone.tar.gz").as_uri()
    assert main(["data", "download", "mvtec", "--yes", "--out", str(tmp_path / "m"), "--url", missing]) == 2
    text = capsys.readouterr().err
    assert "manual alternative" in text and str(tmp_path / "m" / "mvtec_anomaly_detection.tar.xz") in text
