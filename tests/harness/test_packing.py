"""Several jobs per GPU (harness.packing): the memory arithmetic of --jobs-per-gpu K|auto and its
refusals, the wall-time estimate, the GPU-time columns and table; and with Ray (4 logical GPUs),
K jobs sharing one GPU run at the same time, and a K that cannot fit exits 2 before any job."""

from __future__ import annotations

import json
import math

import pytest

from harness import cluster, driver, packing, report, store
from harness.cluster import Cluster, JobRequest, NodeShape, NodeType, PreflightError
from harness.sweep import SweepSpec, expand, spec_from_dict
from tests.harness.plans import sweep_plan

FAKES = "tests.harness.fakes"
H200_NODE = NodeShape("g", "g", cpus=16, gpus=1, is_head=False, accelerator="H200")
SMALL_NODE = NodeShape("t", "t", cpus=4, gpus=1, is_head=False, accelerator="T4")
CPU_NODE = NodeShape("head", "head", cpus=2, gpus=0, is_head=True)


def _configs(profile="paper", categories=("bottle", "carpet"), **overrides):
    return expand(SweepSpec(categories=tuple(categories), profile=profile, overrides=overrides))


# --- arithmetic (no Ray) ---------------------------------------------------------------------------


def test_auto_divides_the_card_by_the_measured_job_and_caps():
    # paper: 2.5 GB peak x 1.2 + 0.5 GB context = 3.5 GB per job.
    assert packing.job_gpu_gb(2.5) == pytest.approx(3.5)
    assert packing.most_jobs(140, 2.5) == 36  # (140 - 14) / 3.5
    assert packing.most_jobs(16, 2.5) == 4  # (16 - 2) / 3.5
    assert packing.most_jobs(8, 2.5) == 1
    h200 = packing.resolve("auto", "paper", _configs(), Cluster((CPU_NODE, H200_NODE)), None)
    assert h200.jobs_per_gpu == packing.MAX_AUTO and h200.gpus_per_job == pytest.approx(1 / 8)
    assert "accelerator_type H200" in h200.describe() and "capped at 8" in h200.describe()
    t4 = packing.resolve("auto", "paper", _configs(), Cluster((SMALL_NODE,)), None)
    assert t4.jobs_per_gpu == 4 and "(16 GB card" in t4.describe()
    # The flag beats Ray's accelerator type; an autoscaler's node type counts like a node.
    assert packing.resolve("auto", "paper", _configs(), Cluster((H200_NODE,)), 12.0).jobs_per_gpu == 2
    assert cluster.accelerator_type({"CPU": 16, "GPU": 1, "accelerator_type:H200": 1}) == "H200"
    assert cluster.accelerator_type({"CPU": 2}) == ""
    scaler = Cluster((CPU_NODE,), (NodeType("gpu", 8, 1, 4, "A10G"),))
    assert packing.resolve("auto", "paper", _configs(), scaler, None).jobs_per_gpu == 6  # (24 - 2.4) / 3.5


def test_a_k_that_cannot_fit_is_refused_naming_the_numbers():
    with pytest.raises(PreflightError) as err:
        packing.resolve(5, "paper", _configs(), Cluster((SMALL_NODE,)), None)
    message = str(err.value)
    assert "\n" not in message
    for part in (
        "--jobs-per-gpu 5 does not fit",
        "5 x 3.5 GB per paper job",
        "2.5 GB measured peak",
        "= 17.5 GB",
        "> 14 GB usable of a 16 GB card",
        "at most 4 fit",
    ):
        assert part in message
    assert packing.resolve(4, "paper", _configs(), Cluster((SMALL_NODE,)), None).jobs_per_gpu == 4
    with pytest.raises(PreflightError, match="does not fit.*at most 0 fit"):
        packing.resolve("auto", "paper", _configs(), Cluster((SMALL_NODE,)), 3.0)


def test_refusals_name_what_is_missing():
    with pytest.raises(
        PreflightError, match=r"the cluster has none \(1 node\(s\), 2 CPU, 0 GPU\); drop it \(and --gpu-memory-gb\)"
    ):
        packing.resolve(2, "paper", _configs(), Cluster((CPU_NODE,)), 80.0)
    unknown = NodeShape("x", "x", cpus=8, gpus=1, is_head=False, accelerator="MysteryGPU")
    with pytest.raises(PreflightError, match=r"accelerator type \(MysteryGPU\).*--gpu-memory-gb"):
        packing.resolve("auto", "paper", _configs(), Cluster((unknown,)), None)
    with pytest.raises(PreflightError, match="asks for more: give --jobs-per-gpu K"):
        packing.resolve("auto", "paper", _configs(image_size=512), Cluster((H200_NODE,)), None)
    # A number is taken as asked when the memory cannot be checked, and the banner says so.
    blind = packing.resolve(3, "paper", _configs(), Cluster((unknown,)), None)
    assert blind.jobs_per_gpu == 3 and "memory fit not checked" in blind.describe()


def test_jobs_per_gpu_in_the_sweep_file_and_its_mistakes():
    assert spec_from_dict({"categories": ["bottle"], "jobs_per_gpu": "auto"}).jobs_per_gpu == "auto"
    assert spec_from_dict({"categories": ["bottle"], "jobs_per_gpu": 4}).jobs_per_gpu == 4
    for bad in (0, "two", 1.5, True):
        with pytest.raises(ValueError, match="jobs_per_gpu must be 'auto' or an integer >= 1"):
            spec_from_dict({"categories": ["bottle"], "jobs_per_gpu": bad})
    with pytest.raises(ValueError, match="not both"):
        spec_from_dict({"categories": ["bottle"], "jobs_per_gpu": 2, "gpus_per_job": 0.5})


def test_the_flags_replace_the_sweep_file_s_way_of_sharing(tmp_path):
    from harness.__main__ import build_parser
    from harness.run_flags import spec_and_options

    sweep = tmp_path / "s.yaml"
    sweep.write_text("categories: [bottle]\nprofile: tiny\njobs_per_gpu: auto\n")

    def spec(*flags):
        return spec_and_options(build_parser().parse_args(["run", "--sweep", str(sweep), *flags]))[0]

    assert spec().jobs_per_gpu == "auto" and spec().gpus_per_job is None
    assert (spec("--gpus-per-job", "0.5").jobs_per_gpu, spec("--gpus-per-job", "0.5").gpus_per_job) == (None, 0.5)
    assert spec("--jobs-per-gpu", "3").jobs_per_gpu == 3
    with pytest.raises(ValueError, match="not both"):
        spec("--jobs-per-gpu", "3", "--gpus-per-job", "0.5")


def test_a_shared_gpu_gives_each_job_its_share_of_cpus_even_below_one():
    node = NodeShape("w", "w", cpus=4, gpus=1, is_head=False)
    request = cluster.default_request([node], gpus_per_job=1 / 8)
    assert request == JobRequest(num_cpus=0.5, num_gpus=0.125)
    assert cluster.capacity(request, [node]) == 8  # not held back to 4 by whole CPUs
    assert cluster.default_request([H200_NODE], gpus_per_job=1 / 8) == JobRequest(num_cpus=2, num_gpus=0.125)


def test_the_estimate_is_jobs_times_steps_times_the_measured_step_over_the_slots():
    shape = Cluster((CPU_NODE, H200_NODE))
    configs = _configs(categories=("bottle", "carpet", "grid", "wood"))
    shared = packing.resolve(2, "paper", configs, shape, None)
    request = cluster.default_request(shape.nodes, gpus_per_job=shared.gpus_per_job)
    found = packing.estimate("paper", configs, request, shape, shared)
    assert found is not None and found.slots == 2
    assert found.seconds == pytest.approx(2 * 2701 * 0.030)  # two rounds of two jobs
    text = found.describe()
    assert "estimate" not in text and "4 job(s) x 2701 steps x 30 ms/step / 2 parallel slot(s)" in text
    assert "H200" in text and "unmeasured" in text and "\n" not in text
    cpu = packing.estimate("smoke", _configs("smoke"), JobRequest(1, 0), Cluster((CPU_NODE,)))
    assert cpu is not None and cpu.seconds == pytest.approx(150 * 1.1) and "2 CPU cores" in cpu.describe()


def test_gpu_seconds_are_wall_time_times_the_share_and_the_summary_totals_them(tmp_path):
    from tests.harness.fakes import fake_result

    results = []
    for config, share in zip(_configs("tiny", ("bottle", "carpet", "grid")), (0.25, 0.25, 0.0)):
        row = store.row_from_result(
            store.Attempt("s", "tiny", attempts=1, worker=None, recorded_at="t", wall_s=7200.0, gpu_share=share),
            fake_result(config, "t"),
        )
        results.append(row)
        store.write_job(tmp_path, row)
    assert [r["gpu_seconds"] for r in results] == [1800.0, 1800.0, 0.0]
    failed = store.row_from_failure(
        store.Attempt("s", "tiny", attempts=1, recorded_at="t", gpu_share=0.5), _configs("tiny", ("wood",))[0], "x"
    )
    assert math.isnan(failed["gpu_seconds"])  # no wall time known
    rows = store.load_results(tmp_path, "s")
    table = report.gpu_time_table(rows, "s", price_per_gpu_hour=3.0)
    assert table is not None and table.headers == ("", "jobs", "GPU-hours", "cost")
    assert table.rows[0] == ("sweep", "3", "1", "3.00")  # 2 x 0.5 h + 0
    assert table.rows[1][2] == "0.333" and table.rows[2][2] == "0.5"
    assert any(t.title == "s · GPU time" for t in report.summary_tables(rows, "s"))
    from harness import report_html

    page = report_html.build_report(tmp_path, "s", price_per_gpu_hour=3.0)
    assert "s · GPU time" in page and "<th>cost</th>" in page
    cpu_only = rows.assign(gpu_seconds=0.0)
    assert report.gpu_time_table(cpu_only, "s") is None  # nothing to say without GPUs or a price


def test_rows_written_before_gpu_time_still_load_and_are_named(tmp_path):
    from tests.harness.test_resume_fixture import FIXTURE, SWEEP

    rows = store.load_results(FIXTURE, SWEEP)
    assert rows["gpu_seconds"].isna().all()
    table = report.gpu_time_table(rows, SWEEP, price_per_gpu_hour=2.0)
    assert table is not None and table.rows[0][1:] == ("0", "—", "—") and "6 job(s) not counted" in table.caption


# --- with Ray: 4 logical GPUs (tests/harness/conftest.py) ------------------------------------------


@pytest.mark.slow
def test_k_jobs_share_one_logical_gpu_at_the_same_time(ray_session, tmp_path):
    k = 4
    meet = tmp_path / "meet"
    configs = [c.replace(data_root=str(meet)) for c in _configs("tiny", ("bottle", "carpet", "grid", "wood"), steps=k)]
    outcome = driver.run_sweep(sweep_plan(configs, "s", tmp_path / "res", gpus_per_job=1 / k), job_fn=f"{FAKES}:rendezvous_job")
    assert outcome.ok, outcome.failed  # each job waited for the other three: they ran at once
    assert outcome.request is not None and outcome.request.num_gpus == pytest.approx(1 / k)
    rows = store.load_results(tmp_path / "res", "s")
    gpu_ids = {tuple(json.loads(e)["gpu_ids"]) for e in rows["extras_json"]}
    assert len(gpu_ids) == 1 and len(next(iter(gpu_ids))) == 1  # all four on the same one GPU
    assert rows["gpu_share"].tolist() == [1 / k] * k
    assert rows["gpu_seconds"].tolist() == pytest.approx((rows["wall_s"] / k).tolist())


@pytest.mark.slow
def test_a_k_that_cannot_fit_exits_2_before_any_job(ray_session, cli, capsys, tmp_path, mvtec_dirs):
    argv = [
        "run", "--results", str(tmp_path / "res"), "--profile", "tiny", "--dataset", "mvtec",
        "--data-root", str(mvtec_dirs("bottle")), "--categories", "bottle",
        "--job-fn", f"{FAKES}:quick_job", "--data-check", f"{FAKES}:fake_check",
    ]  # fmt: skip
    # tiny: 0.5 GB peak -> 1.1 GB per job; a 4 GB card keeps 2 GB free: 1 job fits.
    assert cli([*argv, "--jobs-per-gpu", "2", "--gpu-memory-gb", "4"]) == 2
    err = capsys.readouterr().err
    assert "preflight failed, no job started:" in err and "--jobs-per-gpu 2 does not fit" in err and "at most 1 fit" in err
    assert "Traceback" not in err and store.job_statuses(tmp_path / "res", "tiny-mvtec") == {}
    assert cli([*argv, "--gpu-memory-gb", "4"]) == 2
    assert "--gpu-memory-gb sizes --jobs-per-gpu" in capsys.readouterr().err
    assert cli([*argv, "--jobs-per-gpu", "auto", "--gpu-memory-gb", "16", "--price-per-gpu-hour", "2.5"]) == 0
    out = capsys.readouterr().out
    assert "sharing 8 job(s) per GPU" in out and "capped at 8" in out
    assert "estimate about" in out and "tiny step measured on an H200" in out
    assert "GPU time" in out and "cost" in out
    rows = store.load_results(tmp_path / "res", "tiny-mvtec")
    assert rows["gpu_share"].tolist() == [0.125]
