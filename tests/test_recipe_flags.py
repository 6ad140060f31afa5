"""Both command lines take the same recipe flags: `python -m memseg train` and `python -m harness
run` declare them once (memseg.cli_recipe), so a flag added to one cannot be missing from the other."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from harness.__main__ import build_parser as harness_parser
from memseg.__main__ import build_parser as memseg_parser
from memseg.cli_recipe import add_recipe_flags, recipe_overrides
from memseg.config import JobConfig, id_fields

# Fields each CLI sets its own way: the job's identity (one job vs lists of them) and the data.
_OWN_WAY = {"category", "seed", "ablation", "variant", "dataset", "data_root"}


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _flags(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    """dest -> what argparse knows of the flag (options, kind, type, choices, default)."""
    return {
        a.dest: (tuple(a.option_strings), type(a).__name__, a.type, tuple(a.choices or ()), a.default, a.nargs)
        for a in parser._actions
        if a.option_strings
    }


def _recipe_dests() -> set[str]:
    probe = argparse.ArgumentParser(add_help=False)
    add_recipe_flags(probe)
    return {a.dest for a in probe._actions}


def test_train_and_run_accept_the_same_recipe_flags():
    train = _flags(_subcommand(memseg_parser(), "train"))
    run = _flags(_subcommand(harness_parser(), "run"))
    recipe = _recipe_dests()
    assert recipe and recipe <= set(train) and recipe <= set(run)
    for dest in sorted(recipe):
        assert train[dest] == run[dest], dest
    # No recipe field is settable from one command line only.
    fields = set(id_fields(JobConfig)) - _OWN_WAY
    assert (set(train) & fields) - recipe == set()
    assert (set(run) & fields) - recipe == set()


def test_every_recipe_flag_names_a_job_config_field():
    names = {f.name for f in dataclasses.fields(JobConfig)}
    assert _recipe_dests() <= names


@pytest.mark.parametrize(
    "build, argv", [(memseg_parser, ["train", "--data-root", "d", "--category", "bottle"]), (harness_parser, ["run"])]
)
def test_paths_are_absolute_and_unset_flags_are_left_out(build, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build().parse_args([*argv, "--backbone-weights", "w.pt", "--texture-dir", "tex", "--batch-size", "4", "--lr", "0.01"])
    assert recipe_overrides(args) == {
        "backbone_weights": str(tmp_path / "w.pt"),
        "texture_dir": str(tmp_path / "tex"),
        "batch_size": 4,
        "lr": 0.01,
    }
    named = build().parse_args([*argv, "--backbone-weights", "none"])
    assert recipe_overrides(named) == {"backbone_weights": "none"}
