"""The views of training curves: the sparkline, `harness report --curves` (a line per job, the
validation curve labelled as such) and the HTML report's "Training curves" section."""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from harness import curves_view, report_html, store, tables
from memseg.curves import VALIDATION_LABEL
from tests.harness.conftest import run_cli
from tests.harness.curves_fixture import SWEEP, write_sweep

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    write_sweep(root)
    return root


def test_sparkline_scales_each_series_to_its_own_range():
    assert curves_view.sparkline([4.0, 3.0, 2.0, 1.0]) == "█▆▃▁"
    assert curves_view.sparkline([1.0, 1.0]) == "▄▄"
    assert curves_view.sparkline([]) == ""
    assert curves_view.sparkline([1.0, math.nan, math.inf, 0.0]) == "█··▁"  # a diverged step is a gap, not a scale
    long = curves_view.sparkline([float(k) for k in range(1000)], width=20)
    assert len(long) == 20 and long[0] == "▁" and long[-1] == "█"


def _text(renderables) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(*renderables)
    return console.export_text()


def test_report_curves_shows_a_line_per_job_and_labels_the_validation(results: Path):
    text = _text(curves_view.renderables(results, SWEEP))
    for job_id in store.load_results(results, SWEEP)["job_id"]:
        line = next(l for l in text.splitlines() if job_id in l)
        assert "█" in line and "▁" in line and "image AUROC" in line
    assert text.count(VALIDATION_LABEL) >= 2  # the column and the note under the table
    assert "test" not in text.replace("never the test set and never a test score", "")


def test_a_sweep_without_curves_says_so(tmp_path: Path, results: Path):
    rows = store.load_results(results, SWEEP)
    assert "no job recorded training curves" in _text(curves_view.renderables(tmp_path, "none"))
    only_one = {rows["job_id"].iloc[0]: curves_view.load_all(results, SWEEP, list(rows["job_id"]))[rows["job_id"].iloc[0]]}
    assert "1 finished job(s) recorded no curves" in _text([tables.to_rich(curves_view.curves_table(rows, only_one, "t"))])


def test_the_cli_flag(results: Path, capsys: pytest.CaptureFixture[str]):
    assert run_cli(["report", "--results", str(results), "--name", SWEEP, "--curves"]) == 0
    out = capsys.readouterr().out
    assert f"training curves of {SWEEP}" in out and VALIDATION_LABEL in out


def test_the_html_report_has_an_overlay_per_category_and_a_chart_per_job(results: Path):
    page = report_html.build_report(results, SWEEP)
    section = page[page.index('<section id="training">') : page.index("</section>", page.index('<section id="training">'))]
    assert "<h2>Training curves</h2>" in section and VALIDATION_LABEL in section and 'href="#training"' in page
    pictures = [Image.open(io.BytesIO(base64.b64decode(data))) for data in DATA_URI.findall(section)]
    jobs = store.load_results(results, SWEEP)["job_id"]
    assert len(pictures) == 1 + len(jobs)  # one category: its overlay, then one chart per job
    for picture in pictures:
        picture.load()
    assert all(f'alt="{j}: training curves"' in section for j in jobs)


def test_the_html_report_of_a_sweep_without_curves(tmp_path: Path, results: Path):
    rows = store.load_results(results, SWEEP)
    for job_id in rows["job_id"]:  # the same rows in another results folder, without their curves files
        store.write_job(tmp_path, {**rows[rows["job_id"] == job_id].iloc[0].to_dict(), "curves_file": ""})
    assert "No training curves: no finished job recorded them." in report_html.build_report(tmp_path, SWEEP)


def test_a_page_of_one_revision_reads_the_sweep_folder_not_its_label(results: Path):
    """--by-revision titles the page "<sweep> · revision N"; its pictures and curves still come from <sweep>/."""
    page = report_html.build_report(results, SWEEP, revision=int(store.load_results(results, SWEEP)["revision"].iloc[0]))
    assert f"{SWEEP} · revision" in page and "No training curves" not in page
    assert "data:image/gif;base64," in page  # the predictions GIF, from <sweep>/visuals/


def test_report_curves_markdown_prints_a_markdown_table(cli, capsys, results: Path):
    assert cli(["report", "--results", str(results), "--name", SWEEP, "--curves", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert f"### training curves of {SWEEP}" in out and "| job | category | ablation |" in out
    assert "┃" not in out and "│" not in out  # no rich box drawing anywhere on the page
    for job_id in store.load_results(results, SWEEP)["job_id"]:
        assert any(line.startswith(f"| {job_id} |") for line in out.splitlines())
