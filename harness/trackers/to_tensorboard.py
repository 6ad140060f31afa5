"""TensorBoard: one event-file folder per job, <dest>/<job_id> (default dest: <sweep folder>/tensorboard),
opened with `tensorboard --logdir <dest>`. Curves and final metrics as scalars, the config as
hparams and as a text table, the prediction panels as images.

tensorboard is an optional dependency (the event writer is torch's, which needs it), imported only here.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from harness.trackers.job import JobExport, TrackerMissing

FOLDER = "tensorboard"
FINAL_PREFIX = "final/"  # the final metrics' tags: final/image_auroc, ... (step 0)


def default_dest(sweep_folder: Path) -> Path:
    return sweep_folder / FOLDER


def check_installed() -> None:
    try:
        import tensorboard  # noqa: F401  (optional dependency)
    except ImportError:
        raise TrackerMissing("tensorboard", "tensorboard") from None


def export(job: JobExport, dest: str | Path) -> str:
    """Write the job's event files to <dest>/<job_id> (an earlier export of the job is replaced); that folder."""
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    folder = Path(dest) / job.job_id
    shutil.rmtree(folder, ignore_errors=True)
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for step, values in job.step_metrics():
            for name, value in values.items():
                writer.add_scalar(name, value, step)
        for name, value in job.metrics.items():
            writer.add_scalar(FINAL_PREFIX + name, value, 0)
        params = {k: ("" if v is None else v) for k, v in job.params.items()}
        for summary in hparams(params, {FINAL_PREFIX + k: v for k, v in job.metrics.items()}):
            writer._get_file_writer().add_summary(summary)  # in this folder (add_hparams would open a sub-run)
        table = "\n".join(["| param | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in sorted(params.items()))])
        writer.add_text("config", table, 0)
        for k, picture in enumerate(p for p in job.pictures if p.suffix == ".png"):
            with Image.open(io.BytesIO(picture.read_bytes())) as image:
                writer.add_image(f"pictures/{picture.stem}", np.asarray(image.convert("RGB")), k, dataformats="HWC")
    finally:
        writer.close()
    return str(folder)
