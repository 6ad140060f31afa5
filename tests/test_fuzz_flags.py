"""Random values for every flag of `python -m harness run --dry-run` and `python -m memseg train`
(up to where training would start), and random sweep files: every answer is exit 0 or 2, never a
traceback, and comes quickly. Hypothesis draws the values: strings, unicode, long names, huge and
negative numbers, inf and NaN, YAML with aliases. In this one process, and no Ray: a dry run
starts none.

The settings are the profile "cli-fuzz": derandomized and without an example database, so CI
runs the same examples every time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.__main__ import build_parser as harness_parser
from harness.__main__ import main as harness_main
from memseg.__main__ import build_parser as memseg_parser
from memseg.__main__ import checked_config
from memseg.cli_errors import EXIT_USER_ERROR, run_command
from memseg.data.synthetic import generate

settings.register_profile(
    "cli-fuzz",
    max_examples=200,
    deadline=3000,  # ms per example: a dry run answers in tens of ms once imported
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
FUZZ = settings.get_profile("cli-fuzz")

# Flags left out: --address would reach for a Ray cluster, and two hidden hooks name test functions.
SKIPPED = {"--help", "--address", "--job-fn", "--data-check", "--dry-run", "--results"}
SPECIAL = ["inf", "-inf", "nan", "NaN", "1e309", "-1", "0", "1e-3", "2.5", "99999999999999999999999", "0x10", "", " "]
SPECIAL += ["all", "bottle", "bottle,all", "full", "tiny", "auto", "a,b,,c", "v" * 300, "é" * 150, "bad\udcffname", "../x"]

# What a flag's value may be: text of any kind (no NUL: a command line cannot hold one), numbers of
# any size and kind as text, and the values above.
values = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def _flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not set(a.option_strings) & SKIPPED]


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


RUN_FLAGS = _flags(_subparser(harness_parser(), "run"))
TRAIN_FLAGS = _flags(_subparser(memseg_parser(), "train"))


# Values a user would plausibly give each flag (by its dest), so that most examples get past the
# parser into the checks behind it; each flag still gets a wild value (above) one time in three.
names = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
numbers = st.one_of(st.integers(min_value=0, max_value=300).map(str), st.sampled_from(["1e-3", "0.5", "2", "1e3"]))
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "categories": st.sampled_from(["bottle", "bottle,grid", "all", "carpet", "bottle,bottle"]),
    "category": st.sampled_from(["bottle", "grid"]),
    "image_size": st.sampled_from(["64", "96", "128", "100"]),
    "val_images": st.sampled_from(["2", "3", "8", "100"]),
    "val_every": st.sampled_from(["1", "2", "5"]),
    "seeds": st.sampled_from(["0", "0,1", "3", "0,0"]),
    "seed": st.sampled_from(["0", "1", "7"]),
    "ablations": st.sampled_from(["full", "full,no_memory", "all", "no_msff"]),
    "variants": st.sampled_from(["a", "a,b", "official"]),
    "name": names,
    "backbone_weights": st.sampled_from(["none", "imagenet", "missing.pt"]),
    "texture_dir": st.sampled_from(["missing-textures"]),
    "data_root": st.sampled_from(["data", "missing-data"]),
    "accept_revision": st.sampled_from(["1", "1,2", "0"]),
    "jobs_per_gpu": st.sampled_from(["auto", "2", "1"]),
    "log_dest": st.sampled_from(["mlruns", "file:./mlruns"]),
    "artefacts_dir": st.sampled_from(["artefacts"]),
    "out": st.sampled_from(["out"]),
    "device": st.sampled_from(["cpu", "auto", "cuda:0", "gpu"]),
}


@st.composite
def argv_of(draw: st.DrawFn, flags: list[argparse.Action]) -> list[str]:
    """Some of `flags`, each with a plausible value (a choice, a small number, a name: see
    PLAUSIBLE) four times in five, else a wild one."""
    argv: list[str] = []
    for action in draw(st.lists(st.sampled_from(flags), max_size=5, unique_by=lambda a: a.dest)):
        argv.append(action.option_strings[-1])
        if action.nargs == 0:
            continue
        if action.choices:
            plausible = st.sampled_from(sorted(map(str, action.choices)))
        else:
            plausible = PLAUSIBLE.get(action.dest, numbers)
        wild = draw(st.sampled_from([False, False, False, False, True]))
        argv.append(draw(values if wild else plausible))
    return argv


# A sweep file: the sweep's own keys and a few others, with scalars, lists and mappings as values.
SWEEP_KEYS = ["name", "categories", "seeds", "ablations", "profile", "dataset", "data_root", "overrides"]
SWEEP_KEYS += ["gpus_per_job", "cpus_per_job", "max_retries", "jobs_per_gpu", "description", "variants"]
JOB_KEYS = ["lr", "steps", "image_size", "val_every", "val_images", "memory_size", "compile", "precision", "profile", "seed"]
job_values = {
    "lr": st.floats(min_value=1e-5, max_value=1.0),
    "steps": st.integers(min_value=1, max_value=100),
    "image_size": st.sampled_from([64, 96, 100]),
    "val_every": st.integers(min_value=0, max_value=10),
    "val_images": st.integers(min_value=1, max_value=80),
    "memory_size": st.integers(min_value=0, max_value=70),
    "compile": st.booleans(),
    "precision": st.sampled_from(["fp32", "bf16", "fp64"]),
    "profile": st.sampled_from(["tiny", "smoke"]),
}
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL[:-1]),
    st.text(max_size=20),
)
recipes = st.fixed_dictionaries(
    {}, optional={key: st.one_of(job_values.get(key, scalars), job_values.get(key, scalars), scalars) for key in JOB_KEYS}
)
sweep_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    recipes,
    st.dictionaries(
        st.one_of(st.sampled_from(["a", "b", "v" * 300, ".x"]), st.integers()), st.one_of(st.none(), recipes), max_size=3
    ),
)
PLAUSIBLE_SWEEP: dict[str, st.SearchStrategy[Any]] = {
    "name": names,
    "categories": st.sampled_from(["bottle", ["bottle", "grid"], "all", ["bottle"]]),
    "seeds": st.sampled_from([[0], [0, 1], 2, "0,1"]),
    "ablations": st.sampled_from([["full"], "all", ["full", "no_memory"]]),
    "profile": st.sampled_from(["tiny", "smoke", "paper"]),
    "dataset": st.sampled_from(["synthetic", "mvtec", "folder"]),
    "overrides": recipes,
    "variants": st.dictionaries(st.sampled_from(["a", "b", "v" * 300]), st.one_of(st.none(), recipes), max_size=3),
    "jobs_per_gpu": st.sampled_from(["auto", 2, 0]),
}


def _sweep_value(key: str) -> st.SearchStrategy[Any]:
    plausible = PLAUSIBLE_SWEEP.get(key, sweep_values)
    return st.sampled_from([False, False, False, True]).flatmap(lambda wild: sweep_values if wild else plausible)


def _now_and_then_a_key_of_no_sweep(d: dict[Any, Any]) -> st.SearchStrategy[dict[Any, Any]]:
    return st.sampled_from([d, d, d, d, {**d, "lr": 0.1}, {**d, 3: "x"}])


sweep_dicts = st.fixed_dictionaries({}, optional={key: _sweep_value(key) for key in SWEEP_KEYS}).flatmap(
    _now_and_then_a_key_of_no_sweep
)
# Texts no dict dumps to: aliases nested in aliases, repeated keys, merges, broken syntax.
RAW_SWEEPS = [
    "a: &a [bottle, bottle, bottle]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\ncategories: *c\n",
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
    + "categories: *i\n",
    "categories: [bottle]\ncategories: [grid]\n",
    "base: &b {lr: 1e-3}\ncategories: bottle\nvariants:\n  a:\n    <<: *b\n    steps: 2\n",
    "categories: [bottle\n",
    "categories: &x [*x]\n",
    "x: !!python/object/apply:os.system [echo]\n",
    "- a\n- b\n",
]


def sweep_texts() -> st.SearchStrategy[str]:
    dumped = sweep_dicts.map(lambda d: yaml.safe_dump({"categories": ["bottle"], "profile": "tiny", **d}, allow_unicode=True))
    return st.one_of(dumped, st.sampled_from(RAW_SWEEPS))


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder to run in: a small generated data set (data/), a sweep file written per example."""
    root = tmp_path_factory.mktemp("fuzz")
    generate(root / "data", categories=("bottle",), image_size=64, n_train=6, n_test_good=1, n_test_defect_per_type=1)
    # The first dry run imports torch and ray: out of the timed examples.
    _answer(harness_main, ["run", "--dry-run", "--results", str(root / "res"), "--categories", "bottle"])
    return root


def _answer(main: Any, argv: list[str]) -> tuple[int, str]:
    """`main(argv)`'s exit status and everything it wrote; SystemExit (argparse) is a status too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return code, out.getvalue() + err.getvalue()


def _check(code: int, said: str, argv: list[str]) -> None:
    assert code in (0, EXIT_USER_ERROR), f"{argv!r} answered {code}:\n{said[-3000:]}"
    assert "Traceback" not in said, f"{argv!r}:\n{said[-3000:]}"


@pytest.fixture(autouse=True)
def _in_place_without_ray(monkeypatch: pytest.MonkeyPatch, place: Path) -> None:
    """Relative paths (data, out, mlruns) land in `place`; no Ray cluster is named."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(place)


@FUZZ
@given(argv=argv_of(RUN_FLAGS), sweep=st.one_of(st.none(), sweep_texts()))
def test_harness_run_dry_run_answers_every_flag_with_0_or_2(place: Path, argv: list[str], sweep: str | None) -> None:
    if sweep is not None:
        (place / "sweep.yaml").write_text(sweep, encoding="utf-8", errors="surrogateescape")
        argv = [*argv, "--sweep", str(place / "sweep.yaml")]
    full = ["run", "--dry-run", "--results", str(place / "res"), *(["--categories", "bottle"] if sweep is None else []), *argv]
    code, said = _answer(harness_main, full)
    _check(code, said, full)
    assert not (place / "res").exists() or not any((place / "res").iterdir()), "a dry run wrote into --results"


def _train_until_it_would_start(argv: list[str]) -> int:
    args = memseg_parser().parse_args(argv)
    return run_command(lambda a: 0 if checked_config(a) else 1, args)


@FUZZ
@given(
    argv=argv_of(TRAIN_FLAGS),
    category=st.one_of(st.just("bottle"), values),
    dataset=st.sampled_from(["synthetic", "folder", "mvtec"]),
)
def test_memseg_train_answers_every_flag_with_0_or_2_before_training(
    place: Path, argv: list[str], category: str, dataset: str
) -> None:
    full = ["train", "--data-root", str(place / "data"), "--dataset", dataset, "--category", category, *argv]
    code, said = _answer(_train_until_it_would_start, full)
    _check(code, said, full)


def test_the_fuzzer_reaches_every_flag() -> None:
    """Every flag of both commands can be drawn (a new flag is fuzzed without a change here)."""
    run = {a.option_strings[-1] for a in RUN_FLAGS}
    assert {"--lr", "--val-images", "--log-dest", "--name", "--jobs-per-gpu", "--accept-revision"} <= run
    assert {"--lr", "--val-every", "--image-size", "--device", "--seed"} <= {a.option_strings[-1] for a in TRAIN_FLAGS}
    assert os.environ.get("RAY_ADDRESS") is None


yaml_bits = st.sampled_from(
    ["a: ", "- ", "&x ", "*x ", "<<: ", "!!python/object ", "{", "}", "[", "]", ", ", "\n", "  ", "'", '"']
)
yaml_like = st.lists(st.one_of(yaml_bits, st.sampled_from(SWEEP_KEYS), st.text(max_size=6)), max_size=30).map("".join)


@FUZZ
@given(content=st.one_of(st.binary(max_size=300), yaml_like.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_the_sweep_file_reader_answers_any_bytes_with_a_sweep_or_a_valueerror(place: Path, content: bytes) -> None:
    """Whatever a sweep file holds, load_sweep returns a sweep or raises the ValueError the CLI
    turns into one line: never another exception."""
    from harness.sweep import SweepSpec, load_sweep

    path = place / "any.yaml"
    path.write_bytes(content)
    try:
        assert isinstance(load_sweep(path), SweepSpec)
    except ValueError as err:
        assert str(err).strip()
