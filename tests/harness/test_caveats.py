"""Real data with a random-init backbone (docs/design.md, 'What bad input gets'): flagged in the
result row, and the summary and HTML report say so next to the numbers; generated data or pretrained weights do not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import report, report_html, store
from memseg.caveats import RANDOM_INIT_REAL_DATA, random_init_on_real_data
from memseg.config import JobConfig
from tests.harness.fakes import fake_result


def test_only_real_data_with_random_init_is_flagged() -> None:
    assert random_init_on_real_data("mvtec", "none") and random_init_on_real_data("folder", "none")
    assert not random_init_on_real_data("synthetic", "none")
    assert not random_init_on_real_data("mvtec", "imagenet")
    assert not random_init_on_real_data("mvtec", "/weights/r18.pt")


def _row(dataset: str, weights: str) -> dict:
    config = JobConfig(category="bottle", dataset=dataset, data_root="/d", backbone_weights=weights, steps=4, image_size=64)
    return store.row_from_result(
        store.Attempt("s", "tiny", attempts=1, worker=None, recorded_at="t", wall_s=1.0),
        fake_result(config, "2025-01-01T00:00:00+00:00"),
    )


def test_the_row_carries_the_flag_and_the_tables_the_warning(tmp_path: Path) -> None:
    flagged, clean = _row("mvtec", "none"), _row("mvtec", "imagenet")
    assert flagged["random_init_real_data"] is True and clean["random_init_real_data"] is False
    tables = report.summary_tables(pd.DataFrame([flagged]), "s")
    assert RANDOM_INIT_REAL_DATA in tables[0].caption
    assert all(RANDOM_INIT_REAL_DATA not in t.caption for t in report.summary_tables(pd.DataFrame([clean]), "s"))

    store.write_job(tmp_path, flagged)
    page = report_html.build_report(tmp_path, "s")
    assert 'class="warning"' in page and "near chance on real images" in page
