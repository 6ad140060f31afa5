"""The one error path of both command lines (`python -m memseg` and `python -m harness`): a user's
mistake is one message naming the path or value and what was expected, exit 2; anything else is a
bug, shown with its traceback and called one, exit 1.

Light on purpose (no torch, no ray): the harness's `status` and `report` import it too.
"""

from __future__ import annotations

import argparse
import math
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

EXIT_BUG, EXIT_USER_ERROR, EXIT_INTERRUPTED = 1, 2, 130

_Number = TypeVar("_Number", int, float)

BUG_NOTE = "this is a bug in memseg-bench, not a mistake in your input: please report it with the traceback above"


class UserError(Exception):
    """A mistake the user can fix: `summary` names the bad path or value and what was expected;
    `problems` lists every offending item (one line each), so one run shows everything to fix.
    Every expected failure of both command lines is one of these (a subclass may say more in its
    `prefix` and leave by another `exit_code`); `run_command` is the one place that shows it."""

    prefix = "error:"
    exit_code = EXIT_USER_ERROR

    def __init__(self, summary: str, problems: Sequence[str] | None = None) -> None:
        self.summary = summary
        self.problems = list(problems or [])
        super().__init__("\n".join([summary] + [f"  - {p}" for p in self.problems]))


def user_error(err: BaseException, context: str = "") -> UserError:
    """`err` (a ValueError from a validator that already names the value) as a UserError; only
    for exceptions caught around input checks, never around the work itself."""
    if isinstance(err, UserError):
        return err
    text = str(err).strip() or type(err).__name__
    first, *rest = text.splitlines()
    return UserError(f"{context}{first}", [line.strip().removeprefix("- ") for line in rest if line.strip()])


def render(err: UserError) -> str:
    """The message as the user sees it on stderr."""
    return "\n".join([f"{err.prefix} {err.summary}"] + [f"  - {p}" for p in err.problems])


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a sub-command's handler and turn what escapes it into the exit status."""
    # rich on first use, not at the top: this module stays light for the CLIs' start-up (see above).
    from rich.console import Console
    from rich.text import Text

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return int(handler(args))
    except UserError as err:
        errors.print(Text(render(err), style="red"))
        return err.exit_code
    except KeyboardInterrupt:
        errors.print("interrupted")
        return EXIT_INTERRUPTED
    except Exception:  # a bug: the traceback is what a maintainer needs
        errors.print(Text(traceback.format_exc().rstrip()))
        errors.print(Text(f"error: {BUG_NOTE}", style="bold red"))
        return EXIT_BUG


# ---------------------------------------------------------------------------------------------
# argparse types: a bad flag value is named by argparse ("argument --steps: ...") with exit 2


def _checked(
    text: str, parse: Callable[[str], _Number], expected: str, ok: Callable[[_Number], bool], out_of_range: str = ""
) -> _Number:
    """`text` parsed and range-checked, or argparse's type error naming what was expected
    (`out_of_range`, when given, replaces `expected` for a value that parses but is out of range)."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {out_of_range or expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _checked(text, int, "an integer >= 1", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    return _checked(text, int, "an integer >= 0", lambda v: v >= 0)


def image_size(text: str) -> int:
    return _checked(
        text,
        int,
        "a multiple of 32 (e.g. 64, 256)",
        lambda v: v >= 32 and v % 32 == 0,
        out_of_range="a multiple of 32 and >= 32 (e.g. 64, 256)",
    )


def positive_float(text: str) -> float:
    return _checked(text, float, "a finite number > 0", lambda v: math.isfinite(v) and v > 0)


def non_negative_float(text: str) -> float:
    return _checked(text, float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def device_name(text: str) -> str:
    """auto | cpu | cuda | cuda:N (whether that device exists is the job's to say)."""
    head, _, index = text.partition(":")
    if text in ("auto", "cpu", "cuda") or (head == "cuda" and index.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
