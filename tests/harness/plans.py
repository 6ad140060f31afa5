"""Plans for the driver's tests: the jobs a test made, planned by the one function the run command
plans with (`harness.plan.plan_jobs`), so every test enters the driver as a run does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.options import RunOptions
from harness.plan import Plan, plan_jobs
from harness.sweep import SweepSpec
from memseg.config import JobConfig

_OPTION_FIELDS = ("force", "retry_failed", "accept_revisions", "checkpoint_every", "data_check")


def sweep_plan(configs: Sequence[JobConfig], name: str, results: str | Path, **fields: Any) -> Plan:
    """The plan of `configs` as sweep `name` under `results`. Keyword fields go to the run options
    (force, retry_failed, accept_revisions, checkpoint_every, data_check: none unless given) or to
    the sweep (profile, gpus_per_job, cpus_per_job, max_retries, jobs_per_gpu)."""
    options = {"data_check": None} | {k: v for k, v in fields.items() if k in _OPTION_FIELDS}
    spec_fields = {"profile": "tiny"} | {k: v for k, v in fields.items() if k not in _OPTION_FIELDS}
    return plan_jobs(configs, SweepSpec(name=name, **spec_fields), RunOptions(results=Path(results), **options))
