"""The HTML report of a tiny sweep: every category, metric, published number and picture is there
and decodes, failed jobs are listed, the tables are the Markdown ones, nothing is fetched from
outside, and a real browser renders it with no broken image."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import compare_view, report, report_html, store, visuals_store
from harness.progress import WorkerInfo
from harness.tables import to_markdown
from memseg.config import JobConfig
from memseg.data.registry import MVTEC_AD_HEADLINE
from memseg.profiles import profile
from memseg.result import METRICS, ImageScore, JobResult
from memseg.visuals import ROLE_FALSE_NEGATIVE, ROLE_FALSE_POSITIVE, job_visuals
from tests.harness.conftest import run_cli
from tests.memseg.test_visuals import make_job

SWEEP = "tiny-mvtec"
CATEGORIES = ("bottle", "carpet")
ABLATIONS = ("full", "no_memory")
SEEDS = (0, 1)
FAILING = ("carpet", "no_memory", 1)
ERROR = "RuntimeError: CUDA out of memory while allocating 2.00 GiB"
DATA_URI = re.compile(r'src="data:image/(png|gif);base64,([A-Za-z0-9+/=]+)"')


def persist_like_the_driver(results: Path, sweep: str, result: JobResult) -> None:
    """What harness.driver does with a returned result: visuals first, then the job's files."""
    how = store.Attempt(sweep, "tiny", worker=WorkerInfo(7, "node-a", "n1"), recorded_at="2026-01-01T00:01:00+00:00", wall_s=3.5)
    store.commit(results, how, result)


def fabricated_result(config: JobConfig, index: int) -> JobResult:
    """A result with real metrics and visuals computed from generated maps (no training)."""
    data, maps, scores, evaluation = make_job(seed=index, category=config.category)
    return JobResult(
        job_id=config.job_id,
        config=config,
        metrics=evaluation.metrics,
        image_scores=tuple(
            ImageScore(p, int(l), d, float(s))
            for p, l, d, s in zip(data.test_paths, data.test_labels, data.test_defect_types, scores)
        ),
        timings={"train_s": 2.0, "eval_s": 0.5, "infer_images_per_s": 40.0, "train_steps_per_s": 2.0},
        environment={
            "torch": "2.14.1",
            "cuda": "12.8",
            "timm": "1.0.31",
            "python": "3.11",
            "device": "cuda",
            "device_name": "NVIDIA H100",
            "node": "node-a",
            "git_sha": "abc1234",
        },
        artefacts_dir=None,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        final_loss=0.1,
        visuals=job_visuals(data, maps, scores, evaluation),
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 categories x 2 ablations x 2 seeds of MVTec-labelled results, one of them failed."""
    root = tmp_path_factory.mktemp("results")
    index = 0
    for category in CATEGORIES:
        for ablation in ABLATIONS:
            for seed in SEEDS:
                config = JobConfig.from_dict(
                    profile("tiny")
                    | {"category": category, "ablation": ablation, "seed": seed, "dataset": "mvtec", "data_root": "/data/mvtec"}
                )
                if (category, ablation, seed) == FAILING:
                    row = store.row_from_failure(
                        store.Attempt(SWEEP, "tiny", attempts=2, recorded_at="t"),
                        config,
                        ERROR,
                        f'Traceback (most recent call last):\n  File "job.py"\n{ERROR}',
                    )
                    store.write_job(root, row, None)
                else:
                    persist_like_the_driver(root, SWEEP, fabricated_result(config, index))
                index += 1
    store.save_spec(root, SWEEP, "name: tiny-mvtec\nprofile: tiny\n")
    return root


@pytest.fixture(scope="module")
def page(results: Path) -> str:
    return report_html.write_report(results, SWEEP).read_text(encoding="utf-8")


def decoded_images(page: str) -> list[Image.Image]:
    pictures: list[Image.Image] = []
    for kind, data in DATA_URI.findall(page):
        picture = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        assert picture.format == kind.upper()
        picture.load()  # decodes every byte: a truncated file raises here
        pictures.append(picture)
    return pictures


class _Tables(HTMLParser):
    """The cell texts of every <table>, row by row (header rows included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_every_category_metric_and_published_number_is_there(page: str):
    for category in CATEGORIES:
        assert f'id="curves-{category}"' in page and f'id="predictions-{category}"' in page
    for label in (METRICS[m] for m in MVTEC_AD_HEADLINE):  # the generated set is scored as MVTec AD
        assert f"{label} by category" in page  # its bar chart
        assert f"<th>{label}</th>" in page  # its column
    assert "TooTouch†" in page and "best checkpoint picked on the test set" in page  # labelled as the file says
    assert "paper img" in page and "averages only" in page and "<th>Δ</th>" in page
    assert "abc1234" in page and "NVIDIA H100" in page and "node-a" in page and "2.14.1" in page  # provenance


def test_every_picture_is_inline_and_decodes(results: Path, page: str):
    pictures = decoded_images(page)
    rows = store.load_results(results, SWEEP)
    shown = rows[(rows["seed"] == 0) & (rows["status"] == "ok")]  # the lowest seed of each ablation, per category
    assert len(shown) == len(CATEGORIES) * len(ABLATIONS)
    gifs = [p for p in pictures if p.format == "GIF"]
    assert len(gifs) == len(shown) and all(getattr(g, "n_frames", 1) > 1 for g in gifs)
    # 4 good + 4 anomalous test images: the worst false positive and every anomalous one
    stored = [visuals_store.load_visuals(results, SWEEP, j) for j in shown["job_id"]]
    panels = sum(len(v.panels) for v in stored if v is not None)
    assert panels == 5 * len(shown)
    charts, curves, shown_jobs = len(MVTEC_AD_HEADLINE), len(CATEGORIES), len(shown)
    forests = len(ABLATIONS) - 1  # one forest plot per ablation compared with full
    assert len(pictures) == charts + forests + curves + panels + shown_jobs
    assert page.count("<img ") == len(pictures)
    assert page.count(ROLE_FALSE_POSITIVE) >= shown_jobs and page.count(ROLE_FALSE_NEGATIVE) >= shown_jobs


def test_nothing_is_fetched_from_outside(page: str):
    assert not re.search(r'(src|href)\s*=\s*"(?!data:|#)', page)
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_failed_jobs_are_listed_with_error_and_traceback(results: Path, page: str):
    statuses = store.job_statuses(results, SWEEP)
    (job_id,) = [j for j, status in statuses.items() if status == store.STATUS_FAILED]
    failed = page[page.index('<section id="failed">') : page.index('<section id="provenance">')]
    assert job_id in failed and ERROR in failed and "Traceback (most recent call last)" in failed
    summary = page[: page.index('<section id="charts">')]
    assert job_id in summary and ERROR in summary  # the summary's failed-jobs table


def test_html_tables_are_the_markdown_tables(results: Path, page: str):
    tables = report.summary_tables(store.load_results(results, SWEEP), SWEEP)
    parser = _Tables()
    parser.feed(page)
    markdown = "".join(to_markdown(t) for t in tables)  # what `report --markdown` prints
    for data, parsed in zip(tables, parser.tables):
        assert parsed == [list(data.headers)] + [list(row) for row in data.rows]
        assert data.title in markdown and all(cell.replace("|", "\\|") in markdown for row in data.rows for cell in row)
    parts = compare_view.report_section_parts(store.load_results(results, SWEEP), METRICS)
    assert not isinstance(parts, str), parts
    compared = sum(len(part_tables) for _, part_tables, _ in parts)
    # per ablation against full: overall and by category; and the unpaired rows (the fixture's failed job)
    assert compared == 2 * (len(ABLATIONS) - 1) + 1
    assert len(parser.tables) == len(tables) + compared + 1  # the comparisons and the per-job provenance table


def test_cli_writes_the_report_where_asked(results: Path, tmp_path: Path, capsys):
    assert run_cli(["report", "--results", str(results), "--name", SWEEP, "--html"]) == 0
    assert (results / SWEEP / "report.html").stat().st_size > 10_000
    target = tmp_path / "out" / "r.html"
    assert run_cli(["report", "--results", str(results), "--name", SWEEP, "--markdown", "--html", str(target)]) == 0
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert "| bottle |" in capsys.readouterr().out


def test_one_path_for_several_sweeps_is_refused(results: Path, tmp_path: Path):
    other = tmp_path / "results"
    shutil.copytree(results, other)
    shutil.copytree(other / SWEEP, other / "second")
    assert run_cli(["report", "--results", str(other), "--html", str(tmp_path / "x.html")]) == 2
    assert not (tmp_path / "x.html").exists()


@pytest.mark.slow
def test_a_real_job_flows_from_memseg_through_the_store_into_the_report(tmp_path: Path):
    from memseg import job as job_module
    from memseg.data.synthetic import generate

    data_root = tmp_path / "data"
    generate(data_root, categories=("bottle",), image_size=64, seed=0)
    config = JobConfig.from_dict(profile("tiny") | {"category": "bottle", "dataset": "synthetic", "data_root": str(data_root)})
    result = job_module.run(config)
    assert result.visuals is not None and len(result.visuals.panels) == 6
    persist_like_the_driver(tmp_path / "results", "real", result)
    row = store.load_results(tmp_path / "results", "real").iloc[0]
    assert len(row["extras_json"]) < 100 and "png" not in row["extras_json"]  # the bytes live as files only
    page = report_html.build_report(tmp_path / "results", "real")
    pictures = decoded_images(page)
    # the metric charts, the ROC/PRO curves, 6 panels, the GIF, and the job's training curves (its
    # own figure and its category's: the store commits the curves as the driver does)
    assert sum(p.format == "GIF" for p in pictures) == 1 and len(pictures) == len(MVTEC_AD_HEADLINE) + 1 + 6 + 1 + 2
    assert "published numbers are for MVTec AD and are not shown" in page


# --------------------------------------------------------------------------------------------
# In a real browser (Chromium from the system packages; .ci/run installs it)
# --------------------------------------------------------------------------------------------

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)


def chromium(profile_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with networking off: no sandbox (root in CI), no GPU, no background calls."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile_dir}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Chromium not installed (apt-get install chromium)")
def test_the_page_renders_in_chromium_with_no_broken_image(results: Path, page: str, tmp_path: Path):
    assert CHROMIUM is not None, "CI must install Chromium (apt-get install -y chromium) for the browser test"
    url = (results / SWEEP / "report.html").resolve().as_uri()
    dom = chromium(tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body is not None, dom.stdout[:500]
    assert f'data-images="{page.count("<img ")}"' in body.group(1), body.group(1)
    assert 'data-broken-images="0"' in body.group(1), body.group(1)

    shot = tmp_path / "report.png"
    run = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2000", "--hide-scrollbars", url)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    picture = Image.open(shot)
    assert picture.format == "PNG" and picture.size == (1400, 2000)
    pixels = np.asarray(picture.convert("L"), dtype=float)
    assert pixels.std() > 20  # text, tables and charts, not a blank page
    assert (pixels < 128).mean() > 0.01  # some dark ink


def test_recipe_variants_are_their_own_groups_in_every_table_and_picture(tmp_path: Path):
    for index, (variant, lr) in enumerate((("official", 0.04), ("tootouch", 3e-3))):
        config = JobConfig.from_dict(
            profile("tiny") | {"category": "bottle", "dataset": "mvtec", "data_root": "/data/mvtec", "variant": variant, "lr": lr}
        )
        persist_like_the_driver(tmp_path, "recipes", fabricated_result(config, index))
    page = report_html.write_report(tmp_path, "recipes").read_text(encoding="utf-8")
    for variant in ("official", "tootouch"):
        assert f"<caption>recipes · MVTec AD · full · {variant}</caption>" in page
        assert f"<summary>full · {variant} · seed 0 · bottle-full-{variant}-s0-" in page  # its predictions
    assert "<th>full · official</th><th>full · tootouch</th>" in page  # side by side
    assert "<th>ablation</th><th>variant</th><th>status</th>" in page  # the per-job table
    assert '<h3 id="compare-tootouch-vs-official">tootouch vs official</h3>' in page  # the paired comparison
