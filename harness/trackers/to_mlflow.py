"""MLflow: one run per job in an experiment named after the sweep. Default store: a local file
store, <sweep folder>/mlruns, that needs no server and no database. MLflow 3 keeps its file store
in "maintenance mode" and refuses it unless MLFLOW_ALLOW_FILE_STORE=true: `file_store_allowed` sets
that for the export alone. Browse it with the full mlflow package:
`MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri file:<that folder>`.

mlflow (mlflow-skinny suffices) is an optional dependency, imported only here and only when used.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from harness.trackers.job import JobExport, TrackerMissing

FOLDER = "mlruns"
JOB_TAG = "memseg.job_id"
_BATCH = 1000  # MLflow takes at most 1000 metrics per log_batch


def default_dest(sweep_folder: Path) -> Path:
    return sweep_folder / FOLDER


def check_installed() -> None:
    try:
        import mlflow  # noqa: F401  (optional dependency)
    except ImportError:
        raise TrackerMissing("mlflow", "mlflow-skinny") from None


def tracking_uri(dest: str | Path) -> str:
    """`dest` as a tracking URI: a URI is kept (http://, file:, sqlite:), a folder becomes file:<absolute path>."""
    text = str(dest)
    if "://" in text or text.startswith("file:"):
        return text
    return Path(text).resolve().as_uri()


@contextlib.contextmanager
def file_store_allowed(uri: str) -> Iterator[None]:
    """Within the block, MLflow opens a file: store (MLFLOW_ALLOW_FILE_STORE=true; other stores are
    left alone); the variable is restored after it."""
    if not uri.startswith("file:") or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def export(job: JobExport, dest: str | Path) -> str:
    uri = tracking_uri(dest)
    with file_store_allowed(uri):
        return _export(job, uri)


def _export(job: JobExport, uri: str) -> str:
    """Log the job as a run (replacing an earlier run of the same job in the experiment); its run id."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)  # explicit: never the MLFLOW_* environment
    experiment = client.get_experiment_by_name(job.sweep)
    experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(job.sweep)
    for old in client.search_runs([experiment_id], filter_string=f"tags.`{JOB_TAG}` = '{job.job_id}'"):
        client.delete_run(old.info.run_id)
    run = client.create_run(
        experiment_id, run_name=job.job_id, tags={JOB_TAG: job.job_id, **{f"memseg.{k}": v for k, v in job.tags.items()}}
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(name, value, now, step) for step, values in job.step_metrics() for name, value in values.items()]
    metrics += [Metric(name, value, now, 0) for name, value in job.metrics.items()]
    params = [Param(k, str(v)) for k, v in sorted(job.params.items())]
    tags = [RunTag("memseg.validation", "validation/* curves: simulated anomalies on held-out training images, not the test set")]
    for k in range(0, max(len(metrics), 1), _BATCH):
        client.log_batch(run_id, metrics=metrics[k : k + _BATCH], params=params if k == 0 else [], tags=tags if k == 0 else [])
    for picture in job.pictures:
        client.log_artifact(run_id, str(picture), artifact_path="pictures")
    client.set_terminated(run_id)
    return run_id
