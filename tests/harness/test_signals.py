"""The driver's signal contract inside `signals.sigterm_as_interrupt`: SIGTERM is a Ctrl-C that
says it was SIGTERM, and SIGINT is Ctrl-C even for a driver that inherited SIGINT ignored (a
background `cmd &` of a shell without job control, as CI steps and scripts start it)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from harness import signals


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(2)  # the handler runs in the main thread at the next bytecode; the sleep is cut short


def test_sigint_is_ctrl_c_inside_the_run_even_when_inherited_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt) as caught, signals.sigterm_as_interrupt():
            _deliver(signal.SIGINT)
        assert not signals.was_terminated(caught.value)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # put back as it was found
    finally:
        signal.signal(signal.SIGINT, before)


def test_sigterm_inside_the_run_is_an_interrupt_that_says_sigterm() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as caught, signals.sigterm_as_interrupt():
        _deliver(signal.SIGTERM)
    assert signals.was_terminated(caught.value)
    assert signal.getsignal(signal.SIGTERM) == before
