"""Download, verify and unpack the benchmark data sets and DTD: resumable, checksummed, safely
extracted (tar of any compression, or zip).

The URLs and SHA-256 sums live in SOURCES and nowhere else. A URL can be overridden by argument
or environment variable (MEMSEG_MVTEC_URL, MEMSEG_DTD_URL, ...), since hosts move data sets. When a
download cannot be done, the error says how to do it by hand: put the archive where this module
would have written it and run the same command again; it verifies and extracts it. A data set
with no stable public URL (MPDD) has no pinned URL: its error is the manual procedure.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memseg.data.types import DataError

CHUNK = 1 << 20  # bytes per read and per progress report
TIMEOUT_S = 60.0

# on_progress(phase, done, total): phase is "download" or "verify" (bytes) or "extract" (members);
# total is None when the server does not say how large the archive is.
ProgressFn = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Source:
    """Where a data set comes from and what the user must know before downloading it."""

    name: str
    url: str  # "" when there is no stable public URL (then `manual` says what to do)
    sha256: str  # "" when none is published (then --sha256 must be given with a mirror)
    archive: str  # file name the archive is saved under (also where to put a manual download)
    licence: str
    env_var: str  # environment variable that overrides `url`
    data_dir: str  # where the data set lies after extraction, relative to the output folder
    size: str  # approximate archive size, for the user
    needs_consent: bool  # show the licence and ask before downloading
    manual: str = ""  # how to get the data by hand when there is no URL to fetch


SOURCES: dict[str, Source] = {
    "mvtec": Source(
        name="MVTec AD",
        url=(
            "https://www.mydrive.ch/shares/150996/b52ecdcbf521176e9db9c731f2304b27/download/"
            "420938113-1629960298/mvtec_anomaly_detection.tar.xz"
        ),
        sha256="cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
        archive="mvtec_anomaly_detection.tar.xz",
        licence=(
            "MVTec AD (MVTec Software GmbH) is licensed under Creative Commons "
            "Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0, "
            "https://creativecommons.org/licenses/by-nc-sa/4.0/): non-commercial use only, with "
            "attribution (cite Bergmann et al., CVPR 2019), and adaptations shared under the same licence."
        ),
        env_var="MEMSEG_MVTEC_URL",
        data_dir=".",
        size="about 5.3 GB",
        needs_consent=True,
    ),
    "dtd": Source(
        name="Describable Textures Dataset (DTD) r1.0.1",
        url="https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
        sha256="e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205",
        archive="dtd-r1.0.1.tar.gz",
        licence=(
            "DTD (Cimpoi et al., CVPR 2014) is made available by the Visual Geometry Group, University "
            "of Oxford, for research purposes; see https://www.robots.ox.ac.uk/~vgg/data/dtd/ for its "
            "terms, and cite the paper when you use it."
        ),
        env_var="MEMSEG_DTD_URL",
        data_dir="dtd",
        size="about 625 MB",
        needs_consent=False,
    ),
    # VisA: URL and SHA-256 from anomalib (open-edge-platform/anomalib,
    # src/anomalib/data/datamodules/image/visa.py, DOWNLOAD_INFO); the host is the authors' S3
    # bucket named in amazon-science/spot-diff's README, whose License section says CC BY 4.0.
    # The tar holds the category folders and split_csv/ at its top level. Size: not published.
    "visa": Source(
        name="VisA (Visual Anomaly)",
        url="https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar",
        sha256="2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362",
        archive="VisA_20220922.tar",
        licence=(
            "VisA (Zou et al., ECCV 2022; Amazon) is released under Creative Commons Attribution 4.0 "
            "International (CC BY 4.0, https://creativecommons.org/licenses/by/4.0/): cite the paper "
            "(SPot-the-Difference, arXiv 2207.14315) when you use it."
        ),
        env_var="MEMSEG_VISA_URL",
        data_dir=".",
        size="size not published by the host",
        needs_consent=True,
    ),
    # MVTec AD 2: URL and SHA-256 from anomalib (src/anomalib/data/datamodules/image/mvtecad2.py,
    # DOWNLOAD_INFO); licence from the same module's docstring. Size: not published.
    "mvtec_ad2": Source(
        name="MVTec AD 2",
        url=(
            "https://www.mydrive.ch/shares/121573/7f68fe2c4f7c2ceaa08f463aaeb2f414/download/"
            "466712769-1743422799/mvtec_ad_2.tar.gz"
        ),
        sha256="c0ded99ef32bfc8e352d52beb44515e5b292b8598cb963aadfa91ca0763505e4",
        archive="mvtec_ad_2.tar.gz",
        licence=(
            "MVTec AD 2 (MVTec Software GmbH; Heckler-Kram et al., 2025) is licensed under Creative "
            "Commons Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0, "
            "https://creativecommons.org/licenses/by-nc-sa/4.0/): non-commercial use only, with "
            "attribution, adaptations shared under the same licence. Its private test sets are scored "
            "only by https://benchmark.mvtec.com/."
        ),
        env_var="MEMSEG_MVTEC_AD2_URL",
        data_dir=".",
        size="size not published by the host",
        needs_consent=True,
    ),
    # BTAD: URL and SHA-256 from anomalib (src/anomalib/data/datamodules/image/btech.py,
    # DOWNLOAD_INFO; the zip unpacks to BTech_Dataset_transformed/); licence from the same module.
    "btad": Source(
        name="BTAD (beanTech Anomaly Detection)",
        url="https://avires.dimi.uniud.it/papers/btad/btad.zip",
        sha256="461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a",
        archive="btad.zip",
        licence=(
            "BTAD (Mishra et al., ICIP 2021, VT-ADL) is licensed under Creative Commons "
            "Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0, "
            "https://creativecommons.org/licenses/by-nc-sa/4.0/): non-commercial use only, with "
            "attribution, adaptations shared under the same licence."
        ),
        env_var="MEMSEG_BTAD_URL",
        data_dir="BTech_Dataset_transformed",
        size="size not published by the host",
        needs_consent=True,
    ),
    # MPDD: no stable public archive and no checksum. anomalib (src/anomalib/data/datamodules/image/
    # mpdd.py, get_download_instructions) downloads it by hand from the authors' OneDrive folder,
    # linked from github.com/stepanje/MPDD; licence from the same module's docstring.
    "mpdd": Source(
        name="MPDD (Metal Parts Defect Detection)",
        url="",
        sha256="",
        archive="mpdd.zip",
        licence=(
            "MPDD (Jezek et al., ICUMT 2021) is licensed under Creative Commons "
            "Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0, "
            "https://creativecommons.org/licenses/by-nc-sa/4.0/): non-commercial use only, with "
            "attribution, adaptations shared under the same licence."
        ),
        env_var="MEMSEG_MPDD_URL",
        data_dir=".",
        size="no archive is published",
        needs_consent=True,
        manual=(
            "MPDD has no stable download URL and no published checksum. Download it by hand from the "
            "authors' OneDrive folder linked at https://github.com/stepanje/MPDD (https://vutbr-my.sharepoint.com/"
            ":f:/g/personal/xjezek16_vutbr_cz/EhHS_ufVigxDo3MC6Lweau0BVMuoCmhMZj6ddamiQ7-FnA?e=oHKCxI), "
            "unpack it so that <out>/<category>/train/good/ exists (categories bracket_black, bracket_brown, "
            "bracket_white, connector, metal_plate, tubes), then run `python -m harness data check "
            "--dataset mpdd --data-root <out>`. To fetch a mirror of your own, pass --url and --sha256."
        ),
    ),
}


class DownloadError(DataError):
    """A download, checksum or extraction failed; the message says what to do instead."""


def get_source(what: str) -> Source:
    try:
        return SOURCES[what]
    except KeyError:
        raise DataError(f"unknown data set {what!r} to download", [f"valid: {', '.join(SOURCES)}"]) from None


def resolve_url(what: str, url: str | None = None) -> str:
    """The URL to use: the argument, else the environment variable, else the pinned one."""
    source = get_source(what)
    return url or os.environ.get(source.env_var) or source.url


def download(
    what: str,
    out_dir: Path | str,
    url: str | None = None,
    sha256: str | None = None,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Fetch (resuming a partial `<archive>.part`), verify and extract data set `what` into
    `out_dir`; returns the folder the data set is in. An archive already at `out_dir/<archive>`
    (a manual download) is verified and extracted without downloading. Re-running after success
    does nothing."""
    source = get_source(what)
    url = resolve_url(what, url)
    expected = (sha256 or source.sha256).strip().lower()
    out = Path(out_dir)
    archive = out / source.archive
    if not url and not archive.exists():
        raise DownloadError(f"{source.name} cannot be downloaded automatically", [source.manual])
    if not expected:
        raise DownloadError(
            f"no SHA-256 is published for {source.name}, so {url or archive} cannot be verified",
            ["pass --sha256 with the checksum of your archive (a mirror you trust), or place the data by hand", source.manual],
        )
    out.mkdir(parents=True, exist_ok=True)
    done_marker = out / f".{what}.extracted"
    data_dir = (out / source.data_dir).resolve()
    if done_marker.is_file() and done_marker.read_text().strip() == expected:
        return data_dir

    if not archive.exists():
        part = archive.with_name(archive.name + ".part")
        _fetch(url, part, _manual(source, url, archive), on_progress)
        os.replace(part, archive)
    actual = sha256_of(archive, on_progress)
    if actual != expected:
        bad = archive.with_name(archive.name + ".bad")
        os.replace(archive, bad)
        raise DownloadError(
            f"SHA-256 mismatch for {source.name} from {url}",
            [
                f"expected {expected}",
                f"actual   {actual}",
                f"the file is kept as {bad} (nothing was deleted); remove it once you no longer need it",
                _manual(source, url, archive),
            ],
        )
    extract(archive, out, on_progress)
    done_marker.write_text(expected + "\n")
    return data_dir


def sha256_of(path: Path, on_progress: ProgressFn | None = None) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            done += len(block)
            if on_progress is not None:
                on_progress("verify", done, total)
    return digest.hexdigest()


def extract(archive: Path, out: Path, on_progress: ProgressFn | None = None) -> None:
    """Unpack a tar archive (any compression) into `out` with tarfile's "data" filter: no absolute
    paths, no `..`, no links pointing outside `out`, no device files. A zip archive is unpacked
    after the same checks of every member name (zipfile writes no links)."""
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, out, on_progress)
        return
    try:
        with tarfile.open(archive, "r:*") as tar:
            for count, member in enumerate(tar, start=1):
                tar.extract(member, out, filter="data")
                if on_progress is not None:
                    on_progress("extract", count, None)
    except tarfile.FilterError as exc:
        raise DownloadError(
            f"{archive}: refused to extract an unsafe member ({exc})",
            [f"the archive tries to write outside {out}; it is not the expected data set"],
        ) from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive}: cannot be extracted ({type(exc).__name__}: {exc})") from exc


def _extract_zip(archive: Path, out: Path, on_progress: ProgressFn | None) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                name = Path(member.filename)
                if name.is_absolute() or ".." in name.parts or member.filename.startswith(("/", "\\")):
                    raise DownloadError(
                        f"{archive}: refused to extract an unsafe member ({member.filename!r})",
                        [f"the archive tries to write outside {out}; it is not the expected data set"],
                    )
            for count, member in enumerate(members, start=1):
                zf.extract(member, out)
                if on_progress is not None:
                    on_progress("extract", count, None)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{archive}: cannot be extracted ({type(exc).__name__}: {exc})") from exc


def find_data_root(folder: Path, categories: Sequence[str]) -> Path:
    """The folder under which the category folders lie: `folder` itself when it holds one, else
    its only sub-folder that does (archives differ in whether they wrap the data in a folder)."""
    folder = Path(folder)
    if any((folder / c).is_dir() for c in categories):
        return folder
    inner = (
        [p for p in sorted(folder.iterdir()) if p.is_dir() and any((p / c).is_dir() for c in categories)]
        if folder.is_dir()
        else []
    )
    return inner[0] if len(inner) == 1 else folder


def _fetch(url: str, part: Path, manual: str, on_progress: ProgressFn | None) -> None:
    """Download `url` into `part`, continuing an existing partial file with an HTTP Range request.
    `manual` (how to do it by hand) is added to every error."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "memseg-bench"})
    if start and url.lower().startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the partial file is already the whole archive
            return
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}", [manual]) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {url}: {reason}", [manual]) from exc

    with response:
        status = getattr(response, "status", None)
        if start and status != 206:
            start = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        done = start
        try:
            with open(part, "ab" if start else "wb") as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    done += len(block)
                    if on_progress is not None:
                        on_progress("download", done, total)
        except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
            raise DownloadError(
                f"download of {url} interrupted after {done} bytes ({exc})",
                [f"the partial file {part} is kept: run the same command again to resume", manual],
            ) from exc
    if total is not None and done < total:
        raise DownloadError(
            f"download of {url} ended after {done} of {total} bytes",
            [f"the partial file {part} is kept: run the same command again to resume", manual],
        )


def _manual(source: Source, url: str, archive: Path) -> str:
    return (
        f"manual alternative: download {url} by hand (or from a mirror; set {source.env_var} or pass "
        f"--url to use one) and save it as {archive}, then run the same command again: it verifies "
        f"the SHA-256 and extracts it"
    )
