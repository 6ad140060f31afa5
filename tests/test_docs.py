"""The documentation stays true and complete: the revision table of "What a result means" is
memseg's HISTORY, the flags that revisions added are documented, the README fits on a screen,
every page is in the site's nav, and the generated CLI reference covers every command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from docs_hooks import cli_reference
from harness.__main__ import build_parser as harness_parser
from memseg.__main__ import build_parser as memseg_parser
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


def test_the_readme_fits_on_a_screen_and_its_links_into_the_docs_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav))
    assert sorted(nav) == sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert "docs_hooks/cli_reference.py" in config["hooks"]


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    """Every command's prog, found by walking the sub-parsers (independently of the hook)."""
    progs = [parser.prog]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                progs.extend(_commands(sub))
    return progs


def test_the_cli_reference_holds_the_help_of_every_command(monkeypatch):
    page = (DOCS / "cli.md").read_text()
    assert cli_reference.MARKER in page
    rendered = cli_reference.render()
    progs = _commands(harness_parser()) + _commands(memseg_parser())
    for name in ("run", "status", "report", "data synth", "data check", "data download", "compare"):
        assert f"python -m harness {name}" in progs, name
    for name in ("train", "import-official", "predict"):
        assert f"python -m memseg {name}" in progs, name
    for prog in progs:
        assert f"## `{prog}`\n\n```text\nusage: {prog} " in rendered, prog
    assert re.findall(r"^## `(.+)`$", rendered, flags=re.MULTILINE) == progs
    for columns in ("40", "250"):  # wrapped at the hook's fixed width, whatever the terminal's
        monkeypatch.setenv("COLUMNS", columns)
        assert cli_reference.render() == rendered


def test_the_checkpoint_interval_the_docs_give_is_the_paper_profile_s():
    """docs/cluster.md says how often a paper-profile job keeps its state: the numbers it gives are
    what harness.checkpoints computes for that profile's step count, so the text cannot go stale."""
    from harness.checkpoints import default_every
    from memseg.config import JobConfig
    from memseg.profiles import profile

    steps = JobConfig.from_dict(profile("paper") | {"category": "bottle"}).steps
    text = " ".join((ROOT / "docs" / "cluster.md").read_text().split())
    found = re.search(r"every (\d+) of its (\d+)", text)
    assert found, "docs/cluster.md no longer says the paper profile's checkpoint interval"
    assert (int(found.group(1)), int(found.group(2))) == (default_every("paper", steps), steps)
