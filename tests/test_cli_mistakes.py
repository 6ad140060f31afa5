"""Every command line answers a user's mistake in one message naming the path or value, exit 2, no
traceback (docs/design.md, 'What bad input gets'), and a real bug still shows its traceback and says so.

The mistakes run in two subprocesses (one per command line, side by side), each running its
mistakes one after another through `main(argv)` (tests/cli_batch.py): every case is caught before
Ray starts or a model is built, so a case costs far less than the interpreter start it used to
get of its own (63 s for the 23 cases before, about 15 s now).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from memseg.cli_errors import BUG_NOTE, EXIT_BUG, EXIT_USER_ERROR, UserError, run_command
from memseg.data.synthetic import generate

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mistake:
    name: str
    argv: tuple[str, ...]  # after `python -m`; "{tmp}" and "{data}" are filled in
    named: str  # what stderr must name (a path or a value), after the same filling


MISTAKES = (
    # python -m memseg
    Mistake(
        "train: category folder missing",
        ("memseg", "train", "--data-root", "{tmp}/empty", "--category", "bottle", "--profile", "tiny"),
        "{tmp}/empty/bottle",
    ),
    Mistake(
        "train: data root missing", ("memseg", "train", "--data-root", "{tmp}/nowhere", "--category", "bottle"), "{tmp}/nowhere"
    ),
    Mistake("train: steps 0", ("memseg", "train", "--data-root", "{data}", "--category", "bottle", "--steps", "0"), "'0'"),
    Mistake(
        "train: image size not a multiple of 32",
        ("memseg", "train", "--data-root", "{data}", "--category", "bottle", "--image-size", "100"),
        "'100'",
    ),
    Mistake("train: negative seed", ("memseg", "train", "--data-root", "{data}", "--category", "bottle", "--seed", "-1"), "'-1'"),
    Mistake(
        "train: unknown device", ("memseg", "train", "--data-root", "{data}", "--category", "bottle", "--device", "gpu"), "'gpu'"
    ),
    Mistake(
        "train: weights not a ResNet18 state dict",
        (
            "memseg",
            "train",
            "--data-root",
            "{data}",
            "--dataset",
            "synthetic",
            "--category",
            "bottle",
            "--profile",
            "tiny",
            "--backbone-weights",
            "{tmp}/other.pt",
        ),
        "{tmp}/other.pt",
    ),
    Mistake(
        "predict: model directory missing",
        ("memseg", "predict", "--model", "{tmp}/no_model", "--image", "x.png", "--out", "{tmp}/o.png"),
        "{tmp}/no_model",
    ),
    Mistake(
        "predict: not an image",
        ("memseg", "predict", "--model", "{tmp}/model", "--image", "{tmp}/notes.png", "--out", "{tmp}/o.png"),
        "{tmp}/notes.png",
    ),
    Mistake(
        "import-official: weights file missing",
        ("memseg", "import-official", "--weights", "{tmp}/model-bottle.tch", "--category", "bottle", "--data-root", "{data}"),
        "{tmp}/model-bottle.tch",
    ),
    # python -m harness
    Mistake(
        "run: data root missing",
        ("harness", "run", "--results", "{tmp}/res", "--categories", "bottle", "--data-root", "{tmp}/nowhere"),
        "{tmp}/nowhere",
    ),
    Mistake(
        "run: negative seed",
        ("harness", "run", "--results", "{tmp}/res", "--categories", "bottle", "--seeds", "0,-1", "--dry-run"),
        "0,-1",
    ),
    Mistake("run: steps 0", ("harness", "run", "--categories", "bottle", "--steps", "0"), "'0'"),
    Mistake("run: image size", ("harness", "run", "--categories", "bottle", "--image-size", "100"), "'100'"),
    Mistake("run: negative GPUs per job", ("harness", "run", "--categories", "bottle", "--gpus-per-job", "-1"), "'-1'"),
    Mistake("run: jobs per GPU not a number", ("harness", "run", "--categories", "bottle", "--jobs-per-gpu", "two"), "'two'"),
    Mistake(
        "run: GPU memory without jobs per GPU",
        ("harness", "run", "--results", "{tmp}/res", "--categories", "bottle", "--gpu-memory-gb", "80", "--dry-run"),
        "--gpu-memory-gb",
    ),
    Mistake(
        "run: weights file missing",
        ("harness", "run", "--results", "{tmp}/res", "--categories", "bottle", "--backbone-weights", "{tmp}/r18.pt"),
        "{tmp}/r18.pt",
    ),
    Mistake("status: no such sweep", ("harness", "status", "--results", "{tmp}/res", "--name", "nosuch"), "nosuch"),
    Mistake("report: no such sweep", ("harness", "report", "--results", "{tmp}/res", "--sweep", "nosuch"), "nosuch"),
    Mistake("export: no such sweep", ("harness", "export", "--to", "tensorboard", "--results", "{tmp}/res", "nosuch"), "nosuch"),
    Mistake("export: unknown tracker", ("harness", "export", "--to", "comet", "--results", "{tmp}/res", "nosuch"), "'comet'"),
    Mistake("data check: root missing", ("harness", "data", "check", "--data-root", "{tmp}/nowhere"), "{tmp}/nowhere"),
    Mistake("data synth: no training images", ("harness", "data", "synth", "--out", "{tmp}/syn", "--n-train", "0"), "'0'"),
    Mistake("data download: licence not accepted", ("harness", "data", "download", "mvtec", "--out", "{tmp}/dl"), "--yes"),
    # values of the wrong kind, impossible combinations and damaged sweep files: each is answered
    # in the dry run already, the same way a real run answers it
    *(
        Mistake(f"run: {name}", ("harness", "run", "--results", "{tmp}/res", "--dry-run", *argv), named)
        for name, argv, named in (
            ("a variant's lr is text", ("--sweep", "{tmp}/fast.yaml"), "lr must be a finite number, got 'fast'"),
            ("a variant's lr is infinite", ("--sweep", "{tmp}/inf.yaml"), "lr must be a finite number, got inf"),
            ("a 300-character variant name", ("--sweep", "{tmp}/long.yaml"), "is 300 bytes long"),
            (
                "a key given twice",
                ("--sweep", "{tmp}/twice.yaml"),
                "key 'seeds' is given twice in one mapping (line 2 and line 4)",
            ),
            ("an alias bomb", ("--sweep", "{tmp}/bomb.yaml"), "expands to more than 100000 values"),
            ("a sweep file that is not UTF-8", ("--sweep", "{tmp}/latin.yaml"), "{tmp}/latin.yaml is not UTF-8 text"),
            ("--lr inf", ("--categories", "bottle", "--lr", "inf"), "expected a finite number > 0, got 'inf'"),
            ("--val-images without --val-every", ("--categories", "bottle", "--val-images", "4"), "give val_every N"),
            (
                "--val-images beyond the generated set",
                ("--categories", "bottle", "--val-every", "5", "--val-images", "100"),
                "but the generated synthetic data has 60",
            ),
            ("--log-dest without --log-to", ("--categories", "bottle", "--log-dest", "{tmp}/mlruns"), "--log-dest"),
        )
    ),
    Mistake(
        "run: --results is a file",
        ("harness", "run", "--results", "{tmp}/notes.png", "--categories", "bottle", "--dry-run"),
        "--results {tmp}/notes.png is a file, not a folder",
    ),
    Mistake("train: --lr inf", ("memseg", "train", "--data-root", "{data}", "--category", "bottle", "--lr", "inf"), "'inf'"),
    Mistake(
        "train: --val-images without --val-every",
        ("memseg", "train", "--data-root", "{data}", "--dataset", "synthetic", "--category", "bottle", "--val-images", "4"),
        "give val_every N",
    ),
    Mistake(
        "train: --val-images beyond the training images",
        ("memseg", "train", "--data-root", "{data}", "--dataset", "synthetic", "--category", "bottle", "--profile", "tiny")
        + ("--val-every", "2", "--val-images", "6"),
        "6 normal training images, but a job needs 11 (4 for the memory bank, 6 held out for the validation curve",
    ),
    Mistake(
        "predict: --out is a folder",
        ("memseg", "predict", "--model", "{tmp}/model", "--image", "x.png", "--out", "{tmp}/empty"),
        "--out {tmp}/empty is a folder",
    ),
    Mistake(
        "predict: --out is not a PNG",
        ("memseg", "predict", "--model", "{tmp}/model", "--image", "x.png", "--out", "{tmp}/heat.txt"),
        "--out {tmp}/heat.txt: expected a .png file name",
    ),
)

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi")
)
SWEEP_FILES = {  # the damaged sweep files the mistakes above name
    "fast.yaml": "categories: [bottle]\nvariants:\n  a: {lr: fast}\n",
    "inf.yaml": "categories: [bottle]\nvariants:\n  a: {lr: .inf}\n",
    "long.yaml": f"categories: [bottle]\nvariants:\n  {'v' * 300}: {{}}\n",
    "twice.yaml": "categories: [bottle]\nseeds: [0]\nprofile: tiny\nseeds: [1]\n",
    "bomb.yaml": BOMB + "categories: *i\n",
}


@dataclass(frozen=True)
class Answers:
    tmp: Path
    procs: dict[str, subprocess.CompletedProcess[str]]  # mistake name -> the finished process


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Answers:
    """Every mistake run once, four at a time."""
    tmp = tmp_path_factory.mktemp("mistakes")
    data = tmp / "data"
    generate(data, categories=("bottle",), image_size=64, n_train=6, n_test_good=1, n_test_defect_per_type=1)
    (tmp / "empty").mkdir()
    (tmp / "model").mkdir()
    (tmp / "model" / "config.json").write_text("{}")
    (tmp / "model" / "model.safetensors").write_bytes(b"")
    (tmp / "notes.png").write_text("not an image")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp / "other.pt")
    for name, text in SWEEP_FILES.items():
        (tmp / name).write_text(text)
    (tmp / "latin.yaml").write_bytes("categories: [bottle]\ndescription: caf\u00e9\n".encode("latin-1"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

    def run(program: str) -> list[subprocess.CompletedProcess[str]]:
        mine = [m for m in MISTAKES if m.argv[0] == program]
        argvs = [[a.format(tmp=tmp, data=data) for a in m.argv] for m in mine]
        proc = subprocess.run(
            [sys.executable, "-m", "tests.cli_batch"],
            input=json.dumps(argvs),
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        answers = json.loads(proc.stdout)
        return [subprocess.CompletedProcess(argv, a["returncode"], a["stdout"], a["stderr"]) for argv, a in zip(argvs, answers)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        memseg_procs, harness_procs = pool.map(run, ("memseg", "harness"))
    done = iter(memseg_procs), iter(harness_procs)
    procs = {m.name: next(done[m.argv[0] == "harness"]) for m in MISTAKES}
    return Answers(tmp, procs)


def test_there_are_at_least_twelve_mistakes_across_both_command_lines() -> None:
    assert len(MISTAKES) >= 12
    assert {m.argv[0] for m in MISTAKES} == {"memseg", "harness"}


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_a_mistake_is_one_message_exit_2(answers: Answers, mistake: Mistake) -> None:
    proc = answers.procs[mistake.name]
    named = mistake.named.format(tmp=answers.tmp, data=answers.tmp / "data")
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr
    assert named in proc.stderr.replace("\n", " ")
    assert "Traceback" not in proc.stderr + proc.stdout
    if mistake.argv[:2] == ("harness", "run"):
        assert "sweep" not in proc.stdout  # answered before the banner, so before Ray started


def test_a_bug_shows_its_traceback_and_says_it_is_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_args: object) -> int:
        table: dict[str, int] = {}
        return table["missing"]

    assert run_command(broken, None) == EXIT_BUG  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err and BUG_NOTE in err


def test_a_user_error_lists_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    def mistaken(_args: object) -> int:
        raise UserError("the data at /d cannot be used", ["/d/a.png: no mask", "/d/b.png: unreadable"])

    assert run_command(mistaken, None) == EXIT_USER_ERROR  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "error: the data at /d cannot be used" in err and "/d/a.png: no mask" in err and "/d/b.png" in err
