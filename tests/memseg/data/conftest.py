"""Shared fixtures of the data tests: one small generated set (64 px, three categories: an object,
a grayscale texture, a colour texture), written once and only read; tests that break data work on
a copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from memseg.data.synthetic import generate
from tests.memseg.data.lookalikes import lookalike, lookalike_copy  # noqa: F401  (fixtures of the dataset readers' tests)

SMALL: dict[str, Any] = {
    "categories": ("bottle", "grid", "carpet"),
    "image_size": 64,
    "n_train": 6,
    "n_test_good": 3,
    "n_test_defect_per_type": 2,
    "seed": 0,
}


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only: never modify it in a test (use `data_copy`)."""
    return generate(tmp_path_factory.mktemp("synthetic") / "data", **SMALL)


@pytest.fixture
def data_copy(synthetic_root: Path, tmp_path: Path) -> Path:
    """A private copy of the small generated set, to break on purpose."""
    return Path(shutil.copytree(synthetic_root, tmp_path / "data"))


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
