"""One real MemSeg job (tiny: 64 px, 4 steps) end to end on generated VisA and MVTec AD 2
look-alikes: the job reads each layout through the registry and scores exactly its test set."""

from __future__ import annotations

import math

import pytest

from memseg.config import JobConfig
from memseg.data.loading import scan_category
from memseg.data.lookalike import generate_like
from memseg.job import run
from memseg.profiles import profile


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "category"), [("visa", "pcb1"), ("mvtec_ad2", "walnuts")])
def test_a_job_runs_on_each_layout_and_scores_its_test_set(tmp_path, dataset, category):
    root = generate_like(
        dataset, tmp_path / dataset, [category], image_size=64, n_train=8, n_test_good=3, n_test_defect_per_type=1
    )
    config = JobConfig.from_dict({**profile("tiny"), "category": category, "dataset": dataset, "data_root": str(root)})
    result = run(config)
    expected = scan_category(dataset, root, category).test
    assert sorted(s.path for s in result.image_scores) == sorted(str(t.path) for t in expected)
    assert sum(s.label for s in result.image_scores) == sum(t.is_anomalous for t in expected) > 0
    assert all(math.isfinite(result.metrics[k]) for k in ("image_auroc", "pixel_auroc", "pixel_f1", "pixel_aupro"))


def test_memseg_train_takes_every_dataset_and_checks_its_categories(tmp_path, capsys):
    from memseg.__main__ import main

    argv = ["train", "--data-root", str(tmp_path), "--dataset", "visa", "--category", "bottle", "--profile", "tiny"]
    assert main(argv) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "unknown categories ['bottle']; valid: candle" in err and "(dataset visa)" in err
