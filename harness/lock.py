"""The harness's one lock helper. One writer per results folder: the lock a `harness run` holds on
`<results>/<sweep>/.lock` while it runs, so two runs never write (or re-run) the same jobs at once;
and `taking_turns`, which makes processes on one node wait for each other (actors generating the
same data set).

The lock is `fcntl.flock` on that file, so the kernel releases it when its owner exits in any
way (Ctrl-C, a crash, SIGKILL): a lock whose owner is gone is free again, with nothing to clean
up. The file holds the owner's pid, host, start time and command only to tell the next user who
is in the way; it stays in place (empty when free), since deleting a lock file races with a
process that opened it a moment before.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from memseg.cli_errors import UserError
from memseg.clock import utc_now

LOCK_NAME = ".lock"
# What some network file systems answer when they cannot lock at all (not "someone holds it").
_CANNOT_LOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class LockHeld(UserError, RuntimeError):
    """Another live process holds the lock of the results folder."""


@dataclass(frozen=True)
class Held:
    """The lock as taken: `warning` is set when the file system cannot lock, and the run goes on
    unprotected (the caller should say so)."""

    path: Path
    warning: str = ""


def lock_path(folder: str | Path) -> Path:
    return Path(folder) / LOCK_NAME


def _owner_text() -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": utc_now(),
            "command": " ".join(sys.argv),
        }
    )


def describe_owner(text: str) -> str:
    """ "pid 123 on host h since T (command)" from a lock file's contents; raw text if unparsable."""
    try:
        owner = json.loads(text)
        return f"pid {owner['pid']} on host {owner['host']} since {owner['started_at']} ({owner['command']})"
    except (ValueError, KeyError, TypeError):
        return f"owner unknown (lock file says {text[:200]!r})"


@contextlib.contextmanager
def hold(folder: str | Path) -> Iterator[Held]:
    """Hold the lock of `folder` (created if missing) for the `with` block. Raises LockHeld naming
    the owner when another process holds it; never waits."""
    path = lock_path(folder)
    fd = _open(path)
    try:
        warning = ""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            raise LockHeld(
                f"{path.parent} is being written by another `harness run`: {describe_owner(text)}. "
                "Wait for it to finish or stop it first; two runs of one sweep would run the same jobs twice. "
                f"(The lock is released when that process exits; {path} is its lock file.)"
            ) from None
        except OSError as err:
            if err.errno not in _CANNOT_LOCK:
                raise
            warning = (
                f"the file system of {path.parent} cannot lock files ({os.strerror(err.errno)}): "
                "nothing stops a second run from writing the same sweep at once"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, _owner_text().encode(), 0)
        try:
            yield Held(path, warning)
        finally:
            os.ftruncate(fd, 0)  # free: an empty lock file; the flock goes with the close below
    finally:
        os.close(fd)


class RunLock:
    """The lock one `harness run` holds on its sweep folder, in `stack` until the run ends. Taken
    as soon as the folder is known (harness.plan), which may be before or after Ray starts; taking
    it again for the same folder does nothing, so the caller need not know which it was."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self.folder: Path | None = None
        self.warning = ""  # Held.warning of the lock as taken

    def take(self, folder: str | Path) -> None:
        """Hold the lock of `folder` from now on (LockHeld when another process holds it)."""
        folder = Path(folder)
        if self.folder is not None:
            if self.folder != folder:
                raise RuntimeError(f"this run holds the lock of {self.folder}, not of {folder}")
            return
        self.warning = self._stack.enter_context(hold(folder)).warning
        self.folder = folder


@contextlib.contextmanager
def taking_turns(path: str | Path) -> Iterator[None]:
    """An exclusive lock on the file `path` for the `with` block, waiting while another process
    holds it (between processes on one node; released when the holder exits in any way)."""
    fd = _open(Path(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the file releases the flock


def _open(path: Path) -> int:
    """The lock file, created with its folder. O_CLOEXEC (Python's default): processes started
    while we hold it (Ray's) do not inherit it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
