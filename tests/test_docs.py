"""The documentation's account of what a result means stays true: its revision table is memseg's
HISTORY, and the flags that revisions added are documented."""

from __future__ import annotations

import re
from pathlib import Path

from memseg.revision import HISTORY, REVISION

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _section(page: str, title: str) -> str:
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_the_revision_table_is_the_history():
    section = _section("results.md", "What a result means")
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE))
    assert {int(k): v for k, v in table.items()} == HISTORY
    assert max(HISTORY) == REVISION  # every revision says what it changed


def test_the_flags_of_revisions_are_documented():
    for flag in ("--accept-revision", "--by-revision"):
        assert flag in _section("results.md", "What a result means"), flag
    assert "`--accept-revision N[,N]`" in _section("getting-started.md", "Running benchmarks with the harness")
    assert "--by-revision" in _section("results.md", "Reports")
    assert "--by-revision" in _section("results.md", "Is the difference real?")
