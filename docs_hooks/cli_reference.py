"""MkDocs hook: the CLI reference (docs/cli.md) is the real argparse help of both command lines.

`on_page_markdown` replaces the marker line of cli.md with the `--help` text of every command
and sub-command, built from `harness.__main__.build_parser` and `memseg.__main__.build_parser` at
build time, so the page cannot drift from the parsers. The help is wrapped at a fixed width with
colour off, so the page reads the same on every machine.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

MARKER = "<!-- cli-reference -->"
WIDTH = "100"  # argparse wraps at $COLUMNS - 2


def _builders() -> list[Callable[[], argparse.ArgumentParser]]:
    from harness.__main__ import build_parser as harness_parser
    from memseg.__main__ import build_parser as memseg_parser

    return [harness_parser, memseg_parser]


def commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser, then each of its sub-commands' parsers, depth first, in the order they were added."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # an alias maps to the same parser
                yield from commands(sub)


@contextmanager
def _fixed_terminal() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in ("COLUMNS", "NO_COLOR", "FORCE_COLOR", "PYTHON_COLORS")}
    os.environ.update(COLUMNS=WIDTH, NO_COLOR="1")
    for name in ("FORCE_COLOR", "PYTHON_COLORS"):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def render() -> str:
    """Markdown: one section per command, its `--help` text in a code block."""
    sections = []
    with _fixed_terminal():
        for build in _builders():
            for parser in commands(build()):
                help_text = parser.format_help().rstrip()
                sections.append(f"## `{parser.prog}`\n\n```text\n{help_text}\n```\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != "cli.md":
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/cli.md has lost its marker line {MARKER}")
    return markdown.replace(MARKER, render())
