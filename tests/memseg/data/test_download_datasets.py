"""Downloads of VisA, MVTec AD 2, BTAD (zip) and MPDD (manual) against local archives only: the
pinned sources, zip extraction and its safety, finding the data root inside an archive, and the
refusals where no URL or checksum is published."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from memseg.data.download import SOURCES, DownloadError, download, find_data_root
from memseg.data.registry import DATASETS


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pinned_sources_are_anomalibs_and_every_benchmark_has_a_source():
    # Values as published in anomalib's datamodules (visa.py, mvtecad2.py, btech.py DOWNLOAD_INFO).
    assert SOURCES["visa"].sha256 == "2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362"
    assert SOURCES["visa"].url.endswith("amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar")
    assert SOURCES["mvtec_ad2"].sha256 == "c0ded99ef32bfc8e352d52beb44515e5b292b8598cb963aadfa91ca0763505e4"
    assert SOURCES["btad"].sha256 == "461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a"
    assert SOURCES["mpdd"].url == "" and SOURCES["mpdd"].sha256 == "" and "github.com/stepanje/MPDD" in SOURCES["mpdd"].manual
    assert "CC BY 4.0" in SOURCES["visa"].licence
    for name in ("mvtec_ad2", "btad", "mpdd"):
        assert "CC BY-NC-SA 4.0" in SOURCES[name].licence and SOURCES[name].needs_consent
    assert {d.download for d in DATASETS.values() if d.download} == {"mvtec", "visa", "mvtec_ad2", "mpdd", "btad"}


def test_visa_tar_from_a_local_url_is_verified_and_extracted(tmp_path):
    archive = tmp_path / "src" / "VisA.tar"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tar:
        for name, data in {
            "split_csv/1cls.csv": b"object,split,label,image,mask\n",
            "candle/Data/Images/Normal/0000.JPG": b"j",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = download("visa", tmp_path / "out", url=archive.as_uri(), sha256=_sha(archive))
    assert (out / "split_csv" / "1cls.csv").is_file() and find_data_root(out, DATASETS["visa"].categories) == out


def test_btad_zip_is_extracted_and_its_wrapping_folder_found(tmp_path):
    archive = tmp_path / "src" / "btad.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("BTech_Dataset_transformed/01/train/ok/0000.bmp", b"bmp")
        zf.writestr("BTech_Dataset_transformed/01/ground_truth/ko/0000.png", b"png")
    out = tmp_path / "out"
    data_dir = download("btad", out, url=archive.as_uri(), sha256=_sha(archive))
    assert data_dir == (out / "BTech_Dataset_transformed").resolve()
    assert (data_dir / "01" / "train" / "ok" / "0000.bmp").read_bytes() == b"bmp"
    assert find_data_root(out, ("01", "02", "03")) == out / "BTech_Dataset_transformed"
    # A second run finds the marker and does nothing (the archive may even be gone).
    archive.unlink()
    assert download("btad", out, url=archive.as_uri(), sha256=_sha(out / "btad.zip")) == data_dir


def test_unsafe_zip_member_is_refused(tmp_path):
    archive = tmp_path / "src" / "evil.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", b"ok")
        zf.writestr("../escaped.txt", b"evil")
    with pytest.raises(DownloadError, match="unsafe"):
        download("btad", tmp_path / "out", url=archive.as_uri(), sha256=_sha(archive))
    assert not (tmp_path / "escaped.txt").exists()


def test_mpdd_needs_the_manual_step_or_a_mirror_with_its_checksum(tmp_path):
    with pytest.raises(DownloadError) as err:
        download("mpdd", tmp_path / "out")
    assert "cannot be downloaded automatically" in str(err.value) and "OneDrive" in str(err.value)
    mirror = tmp_path / "mpdd.zip"
    with zipfile.ZipFile(mirror, "w") as zf:
        zf.writestr("tubes/train/good/000.png", b"png")
    with pytest.raises(DownloadError, match="no SHA-256 is published for MPDD"):
        download("mpdd", tmp_path / "out", url=mirror.as_uri())
    out = download("mpdd", tmp_path / "out", url=mirror.as_uri(), sha256=_sha(mirror))
    assert (out / "tubes" / "train" / "good" / "000.png").is_file()
