"""Sweep files read strictly (harness.strict_yaml): repeated keys, alias bombs, deep nesting and
files that are not UTF-8 are refused in one line naming the file; merges and numbers such as 1e-3
read as a user means them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.strict_yaml import MAX_VALUES, load_yaml, parse_yaml


def test_a_key_given_twice_is_refused_naming_both_lines():
    with pytest.raises(ValueError, match=r"f: key 'lr' is given twice in one mapping \(line 2 and line 3\)"):
        parse_yaml("overrides:\n  lr: 0.1\n  lr: 0.2\n", "f")


def test_a_merged_key_may_be_overridden_and_yaml_1_2_numbers_are_numbers():
    data = parse_yaml("base: &b {lr: 0.1, steps: 5}\nfast:\n  <<: *b\n  lr: 1e-2\n", "f")
    assert data["fast"] == {"lr": 0.01, "steps": 5}
    assert parse_yaml("a: 3e-3\nb: 1_000\nc: 2.5\nd: 1e3\n", "f") == {"a": 0.003, "b": 1000, "c": 2.5, "d": 1000.0}


def test_an_alias_bomb_is_refused_within_a_second():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")
    )
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"expands to more than {MAX_VALUES} values"):
        parse_yaml(bomb + "categories: *i\n", "f")
    assert time.perf_counter() - started < 1.0


def test_deep_nesting_code_and_bad_syntax_are_one_line():
    for text, message in (
        ("[" * 5000 + "]" * 5000, "nests its values too deeply"),
        ("x: !!python/object:os.system {}", "line 1, column 4: could not determine a constructor"),
        ("a: [1, 2", "is not valid YAML: line 1"),
    ):
        with pytest.raises(ValueError, match=message) as refused:
            parse_yaml(text, "f")
        assert "\n" not in str(refused.value)


def test_a_file_that_is_not_utf8_or_missing_is_named(tmp_path: Path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("description: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"sweep file {latin} is not UTF-8 text \\(byte 16"):
        load_yaml(latin, "sweep file")
    with pytest.raises(ValueError, match=f"cannot read sweep file {tmp_path / 'no.yaml'}"):
        load_yaml(tmp_path / "no.yaml", "sweep file")
