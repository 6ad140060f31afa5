"""Weights & Biases, offline: one run per job under <dest>/wandb/offline-run-*, in a project named
after the sweep (default dest: <sweep folder>, so <sweep folder>/wandb). No account and no network:
`wandb sync <that run folder>` uploads it later, if ever.

wandb is an optional dependency, imported only here and only when used.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from harness.trackers.job import JobExport, TrackerMissing


def default_dest(sweep_folder: Path) -> Path:
    return sweep_folder


def check_installed() -> None:
    try:
        import wandb  # noqa: F401  (optional dependency)
    except ImportError:
        raise TrackerMissing("wandb", "wandb") from None


def run_id(job: JobExport) -> str:
    """A W&B run id of the job: stable, and only the characters W&B allows."""
    return hashlib.sha256(f"{job.sweep}/{job.job_id}".encode()).hexdigest()[:16]


def export(job: JobExport, dest: str | Path) -> str:
    """Write the job as an offline run; the run's folder."""
    import wandb

    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(
        mode="offline", silent=True, quiet=True, console="off", disable_git=True, save_code=False,
        x_disable_stats=True, x_disable_machine_info=True, init_timeout=120,
    )  # fmt: skip
    run = wandb.init(
        project=job.sweep, name=job.job_id, id=run_id(job), dir=str(folder), config=dict(job.params),
        tags=[t for t in (job.tags.get("category"), job.tags.get("ablation"), job.tags.get("variant")) if t], notes=f"memseg-bench job {job.job_id}",
        settings=settings, reinit="create_new",
    )  # fmt: skip
    try:
        for step, values in job.step_metrics():
            run.log(values, step=step)
        run.summary.update(dict(job.metrics))
        pictures = Path(run.dir) / "pictures"  # copied, not linked: the run stays whole if the sweep's files move
        pictures.mkdir(exist_ok=True)
        for picture in job.pictures:
            copy = Path(shutil.copy2(picture, pictures / picture.name))
            run.save(str(copy), base_path=run.dir, policy="now")
    finally:
        run.finish()
    return str(Path(run.dir).parent)
