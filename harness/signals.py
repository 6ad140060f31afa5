"""SIGTERM handled like Ctrl-C. `ray job stop`, a batch scheduler's time limit and a spot
instance's interruption all send SIGTERM; the driver then does what it does for Ctrl-C (submits
nothing new, kills the running actors, keeps finished results and checkpoints, lists what is
pending) and exits 143 (128 + SIGTERM), so the same command resumes the sweep.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. A KeyboardInterrupt, so every clean-up path written for Ctrl-C runs."""


# Ray's blocking calls (ray.wait, ray.get) turn any exception raised by a signal handler into a
# plain KeyboardInterrupt, so the exception's type cannot say which signal it was: this can.
_received = threading.Event()


def _raise_terminated(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    _received.set()
    raise Terminated(f"received signal {signum} (SIGTERM)")


def was_terminated(err: BaseException | None = None) -> bool:
    """Whether the interrupt being handled came from SIGTERM (not Ctrl-C)."""
    return isinstance(err, Terminated) or _received.is_set()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated in the main thread. Install it after
    `ray.init`, which sets a SIGTERM handler of its own (exit at once, status 15)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    # A driver started in the background by a shell without job control (`cmd &` in a script, a
    # CI step) inherits SIGINT ignored, and Python then never installs its Ctrl-C handler: a
    # `kill -INT` would be lost and the sweep run on. Within the run SIGINT always means Ctrl-C.
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
