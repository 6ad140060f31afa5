"""Downloads against a loopback HTTP server and file:// URLs (the network is never touched):
full fetch, verify and extract, Range resume, checksum mismatch, dead links, unsafe archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memseg.data.download import SOURCES, DownloadError, download, resolve_url


def make_archive(path: Path, files: dict[str, bytes], mode: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]  # mode: one of tarfile's, from the caller
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Server:
    """A loopback HTTP server for a dict of path -> bytes, honouring Range requests (or not)."""

    files: dict[str, bytes] = field(default_factory=dict)
    ranges: list[str] = field(default_factory=list)  # the Range header of each request ("" if none)
    honour_range: bool = True
    cut_next_after: int | None = None  # send the full Content-Length, then hang up after N bytes
    url: str = ""


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.ranges.append(self.headers.get("Range", ""))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            header = self.headers.get("Range", "")
            if header.startswith("bytes=") and state.honour_range:
                start = int(header[len("bytes=") :].split("-")[0])
                if start >= len(data):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_next_after is not None:
                self.wfile.write(body[: state.cut_next_after])
                state.cut_next_after = None
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mvtec_archive(tmp_path: Path) -> Path:
    """A small tar.xz in MVTec layout, with enough bytes that resuming means something."""
    files = {f"bottle/train/good/{i:03d}.png": bytes([i]) * 4000 for i in range(8)}
    files["license.txt"] = b"CC BY-NC-SA 4.0"
    return make_archive(tmp_path / "src" / "mvtec.tar.xz", files, "w:xz")


def test_http_download_verifies_and_extracts(server, mvtec_archive, tmp_path):
    server.files["/mvtec.tar.xz"] = mvtec_archive.read_bytes()
    phases = []
    out = tmp_path / "out"
    data_dir = download(
        "mvtec",
        out,
        url=server.url + "/mvtec.tar.xz",
        sha256=sha(mvtec_archive),
        on_progress=lambda phase, done, total: phases.append(phase),
    )
    assert data_dir == out.resolve()
    assert (out / "bottle" / "train" / "good" / "003.png").read_bytes() == bytes([3]) * 4000
    assert (out / SOURCES["mvtec"].archive).exists() and not list(out.glob("*.part"))
    assert {"download", "verify", "extract"} <= set(phases)
    # done once: a second call neither downloads nor extracts
    requests = len(server.ranges)
    assert download("mvtec", out, url=server.url + "/mvtec.tar.xz", sha256=sha(mvtec_archive)) == data_dir
    assert len(server.ranges) == requests


def test_file_url_and_env_override(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "src" / "d.tar.gz", {"dtd/images/banded/banded_0001.jpg": b"jpg"}, "w:gz")
    monkeypatch.setenv("MEMSEG_DTD_URL", archive.as_uri())
    assert resolve_url("dtd") == archive.as_uri()
    assert resolve_url("dtd", "http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"  # the argument wins
    data_dir = download("dtd", tmp_path / "out", sha256=sha(archive))
    assert data_dir == (tmp_path / "out" / "dtd").resolve()
    assert (data_dir / "images" / "banded" / "banded_0001.jpg").read_bytes() == b"jpg"


def test_resume_sends_range_and_appends(server, mvtec_archive, tmp_path):
    data = mvtec_archive.read_bytes()
    server.files["/a.tar.xz"] = data
    out = tmp_path / "out"
    out.mkdir()
    (out / (SOURCES["mvtec"].archive + ".part")).write_bytes(data[:100])
    download("mvtec", out, url=server.url + "/a.tar.xz", sha256=sha(mvtec_archive))
    assert server.ranges == ["bytes=100-"]
    assert (out / SOURCES["mvtec"].archive).read_bytes() == data


def test_interrupted_download_keeps_part_and_resumes(server, mvtec_archive, tmp_path):
    data = mvtec_archive.read_bytes()
    server.files["/a.tar.xz"] = data
    server.cut_next_after = 150
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download("mvtec", out, url=server.url + "/a.tar.xz", sha256=sha(mvtec_archive))
    part = out / (SOURCES["mvtec"].archive + ".part")
    assert part.stat().st_size == 150
    download("mvtec", out, url=server.url + "/a.tar.xz", sha256=sha(mvtec_archive))
    assert server.ranges == ["", "bytes=150-"]
    assert (out / "bottle" / "train" / "good" / "000.png").exists()


def test_server_that_ignores_range_restarts_from_zero(server, mvtec_archive, tmp_path):
    data = mvtec_archive.read_bytes()
    server.files["/a.tar.xz"] = data
    server.honour_range = False
    out = tmp_path / "out"
    out.mkdir()
    (out / (SOURCES["mvtec"].archive + ".part")).write_bytes(b"junk" * 10)
    download("mvtec", out, url=server.url + "/a.tar.xz", sha256=sha(mvtec_archive))
    assert (out / SOURCES["mvtec"].archive).read_bytes() == data


def test_checksum_mismatch_keeps_the_file_and_says_both_hashes(server, mvtec_archive, tmp_path):
    server.files["/a.tar.xz"] = mvtec_archive.read_bytes()
    out = tmp_path / "out"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as err:
        download("mvtec", out, url=server.url + "/a.tar.xz", sha256=wrong)
    text = str(err.value)
    archive = out / SOURCES["mvtec"].archive
    bad = out / (SOURCES["mvtec"].archive + ".bad")
    assert wrong in text and sha(mvtec_archive) in text
    assert str(bad) in text and bad.read_bytes() == mvtec_archive.read_bytes()
    assert "manual alternative" in text and str(archive) in text
    assert not archive.exists() and not (out / "bottle").exists()


def test_dead_link_names_the_manual_alternative(server, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as err:
        download("dtd", out, url=server.url + "/gone.tar.gz")
    text = str(err.value)
    assert "404" in text and str(out / SOURCES["dtd"].archive) in text and "MEMSEG_DTD_URL" in text


def test_refused_connection_is_a_download_error(tmp_path):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="manual alternative"):
        download("dtd", tmp_path / "out", url=f"http://127.0.0.1:{port}/x.tar.gz")
    with pytest.raises(DownloadError, match="manual alternative"):
        download("dtd", tmp_path / "out", url=(tmp_path / "no-such-file.tar.gz").as_uri())


def test_manually_placed_archive_is_verified_and_extracted(mvtec_archive, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / SOURCES["mvtec"].archive).write_bytes(mvtec_archive.read_bytes())
    download("mvtec", out, url="http://127.0.0.1:9/never-contacted", sha256=sha(mvtec_archive))
    assert (out / "bottle" / "train" / "good" / "000.png").exists()


def test_unsafe_member_is_refused(tmp_path):
    archive = make_archive(tmp_path / "src" / "evil.tar.gz", {"ok.txt": b"ok", "../escaped.txt": b"evil"}, "w:gz")
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match="unsafe"):
        download("dtd", out, url=archive.as_uri(), sha256=sha(archive))
    assert not (tmp_path / "escaped.txt").exists()


def test_pinned_sources_match_reference():
    assert SOURCES["mvtec"].sha256 == "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
    assert SOURCES["dtd"].sha256 == "e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205"
    assert "CC BY-NC-SA 4.0" in SOURCES["mvtec"].licence and SOURCES["mvtec"].needs_consent
