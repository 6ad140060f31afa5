"""Which code made a result: the revision of what the numbers mean (memseg.revision), the git
commit of the checkout this package runs from and whether it had uncommitted changes, and the
package version (what identifies the code when it was installed from a wheel, without git).
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from memseg import __version__, revision

_PACKAGE_DIR = Path(__file__).resolve().parent
GIT_TIMEOUT_S = 5.0


def _git(*argv: str) -> str | None:
    """The stdout of a git command run in this package's folder, or None outside a git checkout
    (no git, not a checkout, or git too slow)."""
    try:
        out = subprocess.run(["git", *argv], cwd=_PACKAGE_DIR, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_sha() -> str:
    """The commit of the checkout this package runs from, or "" outside a git checkout."""
    return (_git("rev-parse", "HEAD") or "").strip()


def git_dirty() -> bool | None:
    """Whether that checkout has uncommitted changes (tracked or untracked, not ignored files);
    None outside a git checkout."""
    out = _git("status", "--porcelain")
    return None if out is None else bool(out.strip())


def package_version() -> str:
    """The installed version of memseg-bench (the distribution's metadata), else the package's own."""
    try:
        return metadata.version("memseg-bench")
    except metadata.PackageNotFoundError:
        return __version__


def code_identity() -> dict[str, str]:
    """The provenance keys of a job's environment (strings, as the rest of it): `revision`,
    `git_sha` ("" without git), `git_dirty` ("true" | "false", "" without git) and `package_version`
    (always; the one identity of code installed from a wheel)."""
    dirty = git_dirty()
    return {
        "revision": str(revision.REVISION),
        "git_sha": git_sha(),
        "git_dirty": "" if dirty is None else str(dirty).lower(),
        "package_version": package_version(),
    }
