"""The precision a job computes in: a pure function of the recipe and the device type (so the GPU
decision is tested here, without a GPU), the memory bank filled in the precision of the features it
is compared with, the old `amp` field read as today's `precision` with every stored id unchanged,
and the precision a job ran in recorded with its result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from harness.store import Attempt, row_from_result
from harness.sweep import expand, spec_from_dict
from memseg import job as job_module
from memseg.build import build_model
from memseg.config import JobConfig, experiment_fields
from memseg.data.synthetic import generate
from memseg.model import smooth
from memseg.precision import PRECISIONS, autocast, computing_in, resolve_precision
from memseg.profiles import profile
from memseg.revision import REVISION

REPO = Path(__file__).resolve().parents[2]


def _recipe_precision(profile_name: str, **changes) -> str:
    return JobConfig.from_dict(profile(profile_name) | {"category": "bottle"} | changes).precision


def test_paper_and_tootouch_compute_in_the_official_float32_on_a_gpu_and_the_bf16_variant_in_bf16() -> None:
    for name in ("paper", "tootouch"):
        on_gpu = resolve_precision(_recipe_precision(name), "cuda")
        assert on_gpu.name == "fp32" and not on_gpu.autocast_bf16, name
        # PyTorch's defaults, which the official code ran under: TF32 convolutions, float32 matmuls.
        assert on_gpu.cudnn_tf32 and not on_gpu.matmul_tf32
    spec = spec_from_dict(yaml.safe_load((REPO / "jobs" / "recipes.yaml").read_text()) | {"categories": ["bottle"], "seeds": [0]})
    by_variant = {c.variant: resolve_precision(c.precision, "cuda") for c in expand(spec)}
    assert by_variant["official"].name == "fp32" and by_variant["tootouch"].name == "fp32"
    assert by_variant["bf16"].name == "bf16" and by_variant["bf16"].autocast_bf16


def test_each_precision_on_each_device_type() -> None:
    table = {
        ("fp32", "cuda"): ("fp32", False, False, True),
        ("tf32", "cuda"): ("tf32", False, True, True),
        ("bf16", "cuda"): ("bf16", True, False, True),
        ("auto", "cuda"): ("bf16", True, False, True),
        ("fp32", "cpu"): ("fp32", False, False, False),
        ("tf32", "cpu"): ("fp32", False, False, False),  # no TF32 on the CPU
        ("bf16", "cpu"): ("bf16", True, False, False),  # the CPU's bf16 autocast
        ("auto", "cpu"): ("fp32", False, False, False),
    }
    for (name, device), expected in table.items():
        got = resolve_precision(name, device)
        assert (got.name, got.autocast_bf16, got.matmul_tf32, got.cudnn_tf32) == expected, (name, device)
    assert set(PRECISIONS) == {name for name, _ in table}
    # The CPU profiles keep what they always computed: float32 on the CPU, bf16 on a GPU.
    assert _recipe_precision("smoke") == _recipe_precision("tiny") == "auto"
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        JobConfig("bottle", precision="fp16")


def test_the_tf32_switches_are_set_for_the_block_and_restored() -> None:
    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with computing_in(resolve_precision("tf32", "cuda"), "cuda"):
        assert matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with computing_in(resolve_precision("fp32", "cuda"), "cuda"):
        assert not matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert (matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def _bank_and_di(precision: str, fill_in_job_precision: bool = True) -> list[torch.Tensor]:
    """DI of the memory images themselves, bank filled by the job's `fill_memory` (or, as before
    revision 5, in float32 whatever the forward's precision)."""
    config = JobConfig.from_dict(profile("tiny") | {"category": "bottle", "memory_size": 4, "precision": precision})
    model = build_model(config).eval()
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    compute = resolve_precision(precision, "cpu")
    if fill_in_job_precision:
        job_module.fill_memory(model, images, torch.device("cpu"), compute)
    else:
        with torch.no_grad():
            model.fill_memory(images.float() / 255)
    with torch.no_grad(), autocast(compute, "cpu"):
        _, raw = model.frozen_features(images.float() / 255)
        return model.difference([smooth(f) for f in raw])


def test_the_bank_is_filled_in_the_precision_of_the_features_it_is_compared_with() -> None:
    """A normal image that is in the bank is its own nearest item: its DI is exactly 0, in bf16 as in
    float32. A float32 bank against bf16 features (what GPUs computed before revision 5) is not."""
    for precision in ("fp32", "bf16"):
        assert all(float(d.abs().max()) == 0.0 for d in _bank_and_di(precision)), precision
    mixed = _bank_and_di("bf16", fill_in_job_precision=False)
    assert max(float(d.abs().max()) for d in mixed) > 0.0


def test_the_old_amp_field_reads_as_precision_and_keeps_every_stored_id() -> None:
    base = {k: v for k, v in profile("tiny").items() if k != "precision"} | {"category": "bottle", "dataset": "synthetic"}
    for amp, precision in ((True, "auto"), (False, "fp32")):
        old = JobConfig.from_dict(base | {"amp": amp})  # a stored config_json of revision 4 or earlier
        assert old.precision == precision and old == JobConfig.from_dict(base | {"precision": precision})
        spelled_old = json.loads(old.to_json())
        del spelled_old["precision"]
        assert experiment_fields({**spelled_old, "amp": amp}) == experiment_fields(json.loads(old.to_json()))
    # A config stored before either field existed computed in what `amp: true` meant.
    before = {
        k: v for k, v in json.loads(JobConfig.from_dict(base | {"precision": "auto"}).to_json()).items() if k != "precision"
    }
    assert experiment_fields(before)["precision"] == "auto"
    ids = {p: JobConfig.from_dict(base | {"precision": p}).job_id for p in PRECISIONS}
    assert len(set(ids.values())) == len(PRECISIONS)  # four precisions, four experiments
    with pytest.raises(ValueError, match="'amp' is the old name of 'precision'"):
        JobConfig.from_dict(base | {"amp": True, "precision": "bf16"})
    with pytest.raises(ValueError, match="amp \\(now precision\\) cannot be 'yes'"):
        JobConfig.from_dict(base | {"amp": "yes"})


@pytest.mark.slow
def test_a_job_records_the_precision_it_computed_in(tmp_path: Path) -> None:
    """A tiny job in bf16 on the CPU (its autocast) and its row; the same job in fp32 computes other numbers."""
    generate(tmp_path, categories=("bottle",), image_size=64, n_train=10, n_test_good=3, n_test_defect_per_type=1, seed=0)
    base = profile("tiny") | {"category": "bottle", "data_root": str(tmp_path), "dataset": "synthetic", "device": "cpu"}
    results = {p: job_module.run(JobConfig.from_dict(base | {"precision": p})) for p in ("bf16", "fp32")}
    assert results["bf16"].environment["precision"] == "bf16" and results["fp32"].environment["precision"] == "fp32"
    assert results["bf16"].final_loss != results["fp32"].final_loss
    row = row_from_result(Attempt("s", "tiny", attempts=1, worker=None, recorded_at="", wall_s=1.0), results["bf16"])
    assert row["precision"] == "bf16" and row["revision"] == REVISION
