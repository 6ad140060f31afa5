"""A value that becomes a folder or file name is a name, not a path: a sweep's
name (--name, `name:` in a sweep file), a folder data set's category (harness and `python -m
memseg`), each refused with exit 2 naming the rule before anything is written (the rule itself:
tests/memseg/test_names.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memseg.__main__ import main as memseg_main
from tests.harness.conftest import run_cli

BAD = ("../x", "a/b", ".hidden", "bad\nname")


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """tmp/work/results is the results root; a folder data set under tmp/work/data."""
    work = tmp_path / "work"
    (work / "data" / "parts" / "normal").mkdir(parents=True)
    return work


def _refused(capsys, code: int, value: str, what: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{what} {value!r} is refused" in " ".join(err.split()), err
    assert "a name is one folder name" in " ".join(err.split()) and "Traceback" not in err


@pytest.mark.parametrize("value", BAD)
def test_harness_run_refuses_a_bad_name_flag_and_writes_nothing(value, sandbox, capsys):
    before = _tree(sandbox.parent)
    argv = ["run", "--results", str(sandbox / "results"), "--profile", "tiny", "--categories", "bottle", "--name", value]
    _refused(capsys, run_cli(argv), value, "sweep name")
    assert _tree(sandbox.parent) == before


@pytest.mark.parametrize("value", BAD)
def test_harness_run_refuses_a_bad_name_in_a_sweep_file_and_writes_nothing(value, sandbox, capsys):
    sweep = sandbox / "shared.yaml"
    sweep.write_text(yaml.safe_dump({"name": value, "categories": ["bottle"], "profile": "tiny"}))
    before = _tree(sandbox.parent)
    _refused(capsys, run_cli(["run", "--results", str(sandbox / "results"), "--sweep", str(sweep)]), value, "sweep name")
    assert _tree(sandbox.parent) == before


@pytest.mark.parametrize("value", BAD)
def test_harness_run_refuses_a_bad_folder_category_and_writes_nothing(value, sandbox, capsys):
    before = _tree(sandbox.parent)
    argv = ["run", "--results", str(sandbox / "results"), "--profile", "tiny", "--dataset", "folder"]
    argv += ["--data-root", str(sandbox / "data"), "--categories", value, "--name", "ok"]
    _refused(capsys, run_cli(argv), value, "category")
    assert _tree(sandbox.parent) == before


@pytest.mark.parametrize("value", BAD)
def test_memseg_train_refuses_a_bad_folder_category_and_writes_nothing(value, sandbox, capsys):
    before = _tree(sandbox.parent)
    argv = ["train", "--data-root", str(sandbox / "data"), "--dataset", "folder", "--category", value, "--profile", "tiny"]
    _refused(capsys, memseg_main([*argv, "--out", str(sandbox / "out")]), value, "category")
    assert _tree(sandbox.parent) == before
