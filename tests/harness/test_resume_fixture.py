"""Results written before a change still load and resume: tests/harness/fixtures/results_v1/ was
written by the harness of commit f57f07c (see fixtures/make_results_v1.py), and job ids of the
configs of that day must not change, or a resume would re-run every finished job."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from harness import driver, report, store
from harness.sweep import expand, spec_from_dict
from memseg.config import JobConfig
from memseg.profiles import TOOTOUCH_RECIPE
from memseg.revision import LEGACY_REVISION
from tests.harness.plans import sweep_plan

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results_v1"
SWEEP = "fixture-v1"
DONE = ("bottle-full-s0-aab5756e77", "bottle-full-s1-d3527f71a2", "grid-full-s0-b79e0d9bef", "grid-full-s1-40b276f23c")
FAILED = ("carpet-full-s0-2cf0231497", "carpet-full-s1-7a029785d4")

# Ids computed by the code of commit f57f07c (JobConfig.from_dict(case).job_id). Revision 3 changed
# the defaults of steps, lr, weight decay, optimizer, schedule and focal loss: the same experiments
# are spelled out today with revision 2's recipe (profile tootouch) under their values, in the
# precision every job computed in before revision 5 (auto: bf16 on a GPU, float32 on the CPU).
THAT_DAY = {**TOOTOUCH_RECIPE, "precision": "auto"}
IDS_OF_THAT_DAY = [
    ({"category": "bottle"}, "bottle-full-s0-f36388480a"),
    # Since revision 2 (the official network) an unset memory size is screw's official 120 images, a different experiment;
    # the bank of that day (30 images) keeps its id.
    ({"category": "screw", "ablation": "no_memory", "seed": 2, "memory_size": 30}, "screw-no_memory-s2-a4a57d8f27"),
    (
        {
            "image_size": 64,
            "steps": 150,
            "batch_size": 8,
            "memory_size": 10,
            "backbone_weights": "none",
            "eval_batch_size": 16,
            "category": "bottle",
        },
        "bottle-full-s0-be0f453302",
    ),
    (
        {
            "image_size": 64,
            "steps": 4,
            "batch_size": 4,
            "memory_size": 4,
            "backbone_weights": "none",
            "log_every": 1,
            "category": "screw",
            "ablation": "no_memory",
            "seed": 2,
        },
        "screw-no_memory-s2-58d8af639c",
    ),
    (
        {
            "category": "wood",
            "dataset": "synthetic",
            "texture_dir": "/data/dtd/images",
            "backbone_weights": "/w/resnet18.pth",
            "steps": 300,
            "lr": 1e-3,
        },
        "wood-full-s0-c6bea51cda",
    ),
    (
        {
            "category": "my_parts",
            "dataset": "folder",
            "data_root": "/x",
            "out_dir": "/o",
            "device": "cuda:1",
            "eval_batch_size": 4,
            "log_every": 7,
            "compile": True,
            "amp": False,
        },
        "my_parts-full-s0-c49596a59d",
    ),
]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A writable copy: a resume may write, and the fixture must stay as the old code left it."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "results"))


@pytest.mark.parametrize(("values", "expected"), IDS_OF_THAT_DAY)
def test_job_ids_of_that_day_are_unchanged(values, expected):
    that_day = TOOTOUCH_RECIPE if "amp" in values else THAT_DAY  # a case that spells the old field itself
    assert JobConfig.from_dict({**that_day, **values}).job_id == expected
    # The same words mean the official recipe today: another experiment, another id.
    assert JobConfig.from_dict(values).job_id != expected


def test_old_results_load_with_today_s_schema(results):
    rows = store.load_results(results, SWEEP)
    assert list(rows.columns) == store.JOB_SCHEMA.names
    assert (rows["revision"] == LEGACY_REVISION).all()  # written before revisions were recorded
    assert sorted(rows["job_id"]) == sorted(DONE + FAILED)
    assert store.job_statuses(results, SWEEP) == {**dict.fromkeys(DONE, "ok"), **dict.fromkeys(FAILED, "failed")}
    ok = rows.set_index("job_id").loc[list(DONE)]
    assert ok["image_auroc"].between(0.8, 1.0).all() and (ok["attempts"] == 1).all()
    assert len(store.load_scores(results, SWEEP, DONE[0])) == 3
    assert (rows["variant"] == "").all()  # written before recipe variants existed: no variant
    (table, *_rest) = report.summary_tables(rows, SWEEP)
    assert {r[0] for r in table.rows} == {"bottle", "carpet", "grid", "average"}


def test_the_sweep_of_that_day_is_rerun_unless_its_revision_is_accepted(results):
    spec = spec_from_dict(yaml.safe_load(store.read_spec(results, SWEEP) or ""))
    configs = expand(spec)
    assert sorted(c.job_id for c in configs) == sorted(DONE + FAILED)
    # Its results are of the legacy revision: not done for today's code ...
    plan = store.plan_run(results, SWEEP, [c.job_id for c in configs])
    assert sorted(plan.run) == sorted(DONE + FAILED) and plan.stale_by_revision() == {LEGACY_REVISION: 6}
    # ... unless accepted. Nothing to run: no Ray starts, and a job function that would fail is never called.
    plan = sweep_plan(configs, SWEEP, results, accept_revisions=(LEGACY_REVISION,))
    outcome = driver.run_sweep(plan, job_fn="tests.harness.fakes:failing_job")
    assert outcome.ran == () and sorted(outcome.done_before) == sorted(DONE)
    assert sorted(outcome.failed_before) == sorted(FAILED) and not outcome.ok
    assert sorted(p.name for p in (results / SWEEP / "jobs").iterdir()) == sorted(f"{j}.parquet" for j in DONE + FAILED)
