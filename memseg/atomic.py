"""One way to write a file that no reader ever sees half-written: write a temp file beside the
target, then rename it into place (a rename within a folder is atomic on POSIX file systems).

Temp files are named `.<name>.tmp-<pid>`: hidden, never matching a reader's pattern, and one per
process, so two writers never share one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def temp_path(path: Path) -> Path:
    """The temp file a write of `path` goes through."""
    return path.parent / f".{path.name}.tmp-{os.getpid()}"


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(temp)` and rename the temp file to `path` (its folder is created). On any error
    the temp file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
