"""Small generated look-alikes of VisA, MVTec AD 2, MPDD and BTAD for the reader tests (32 px, a
few images per split), made once per test session and only read (tests that break data copy it)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from memseg.data.lookalike import generate_like

SMALL: dict[str, Any] = {"image_size": 32, "n_train": 4, "n_test_good": 2, "n_test_defect_per_type": 1, "seed": 0}
TWO = {
    "visa": ("candle", "pcb1"),
    "mvtec_ad2": ("can", "walnuts"),
    "mpdd": ("tubes", "connector"),
    "btad": ("01", "02", "03"),
}


@pytest.fixture(scope="session")
def lookalike(tmp_path_factory: pytest.TempPathFactory):
    """lookalike(dataset) -> root of a read-only look-alike of a few of its categories."""
    made: dict[str, Path] = {}

    def get(dataset: str) -> Path:
        if dataset not in made:
            made[dataset] = generate_like(dataset, tmp_path_factory.mktemp(dataset) / "data", TWO[dataset], **SMALL)
        return made[dataset]

    return get


@pytest.fixture
def lookalike_copy(lookalike, tmp_path: Path):
    """lookalike_copy(dataset) -> a private copy to break on purpose."""
    return lambda dataset: Path(shutil.copytree(lookalike(dataset), tmp_path / dataset))
