"""The README's account of what a result means stays true: its revision table is memseg's HISTORY,
and the flags that revisions added are documented."""

from __future__ import annotations

import re
from pathlib import Path

from memseg.revision import HISTORY, REVISION

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    return README[start : README.index("\n## ", start + 1)]


def test_the_revision_table_is_the_history():
    section = _section("What a result means")
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE))
    assert {int(k): v for k, v in table.items()} == HISTORY
    assert max(HISTORY) == REVISION  # every revision says what it changed


def test_the_flags_of_revisions_are_documented():
    for flag in ("--accept-revision", "--by-revision"):
        assert flag in _section("What a result means"), flag
    assert "`--accept-revision N[,N]`" in _section("Running benchmarks with the harness")
    assert "--by-revision" in _section("Reports") and "--by-revision" in _section("Is the difference real?")
