"""Where a sweep's files live under the results root; the one place their names are spelled. A leaf:
pathlib only, so the actors (harness.worker, harness.checkpoints) import it without pandas.

  <results>/<sweep>/sweep.yaml                       the spec of the latest run
  <results>/<sweep>/jobs/<job_id>.parquet            one row per job (harness.store)
  <results>/<sweep>/scores/<job_id>.parquet          per-image scores (harness.store)
  <results>/<sweep>/visuals/<job_id>/                the job's pictures (harness.visuals_store)
  <results>/<sweep>/curves/<job_id>.parquet          the job's training curves (harness.curves_store)
  <results>/<sweep>/checkpoints/<job_id>.safetensors training state (harness.checkpoints)
  <results>/<sweep>/report.html                      the HTML report (harness.report_html)
  <results>/<sweep>/.lock                            held by the run writing the folder (harness.lock)
  <results>/<sweep>/{mlruns,wandb,tensorboard}/      default tracker stores (harness.trackers, each names its own)
  <results>/_data/synthetic-<size>/                  the generated data set, shared by sweeps
"""

from __future__ import annotations

from pathlib import Path

JOBS = "jobs"
SCORES = "scores"
VISUALS = "visuals"
CURVES = "curves"
CHECKPOINTS = "checkpoints"
CHECKPOINT_SUFFIX = ".safetensors"
SPEC_FILE = "sweep.yaml"
REPORT_FILE = "report.html"
DATA = "_data"  # not a sweep: names starting with "_" or "." never are


def sweep_dir(results_dir: str | Path, sweep: str) -> Path:
    return Path(results_dir) / sweep


def jobs_dir(results_dir: str | Path, sweep: str) -> Path:
    return sweep_dir(results_dir, sweep) / JOBS


def job_path(results_dir: str | Path, sweep: str, job_id: str) -> Path:
    return jobs_dir(results_dir, sweep) / f"{job_id}.parquet"


def scores_path(results_dir: str | Path, sweep: str, job_id: str) -> Path:
    return sweep_dir(results_dir, sweep) / SCORES / f"{job_id}.parquet"


def spec_path(results_dir: str | Path, sweep: str) -> Path:
    return sweep_dir(results_dir, sweep) / SPEC_FILE


def visuals_dir(results_dir: str | Path, sweep: str, job_id: str) -> Path:
    return sweep_dir(results_dir, sweep) / VISUALS / job_id


def curves_relative(job_id: str) -> str:
    """A job's curves file relative to its sweep folder: what its row's `curves_file` holds."""
    return f"{CURVES}/{job_id}.parquet"


def curves_path(results_dir: str | Path, sweep: str, job_id: str) -> Path:
    return sweep_dir(results_dir, sweep) / curves_relative(job_id)


def checkpoints_dir(results_dir: str | Path, sweep: str) -> Path:
    return sweep_dir(results_dir, sweep) / CHECKPOINTS


def checkpoint_path(results_dir: str | Path, sweep: str, job_id: str) -> Path:
    return checkpoints_dir(results_dir, sweep) / f"{job_id}{CHECKPOINT_SUFFIX}"


def report_path(results_dir: str | Path, sweep: str) -> Path:
    """The HTML report when `report --html` names no file."""
    return sweep_dir(results_dir, sweep) / REPORT_FILE


def is_sweep_dir(path: Path) -> bool:
    """A folder of the results root that holds a sweep: a jobs/ folder or a sweep.yaml, and a name
    that does not start with "_" or "." (the generated data, temp folders)."""
    return path.is_dir() and not path.name.startswith(("_", ".")) and ((path / JOBS).is_dir() or (path / SPEC_FILE).exists())


def synthetic_data_dir(results_dir: str | Path, image_size: int) -> Path:
    """The generated data set of this image size, made once and reused by every sweep (absolute)."""
    return (Path(results_dir) / DATA / f"synthetic-{image_size}").resolve()


def check_results_root(results_dir: str | Path) -> None:
    """ValueError when the results root cannot be a folder: it, or the nearest of its parents that
    exists, is a file. Checked before anything runs, a dry run included, so a run never ends in
    NotADirectoryError when it writes its first file."""
    path = Path(results_dir)
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                what = "is" if folder == path else f"lies under {folder}, which is"
                raise ValueError(f"--results {path} {what} a file, not a folder: give a folder (it is made when missing)")
            return
