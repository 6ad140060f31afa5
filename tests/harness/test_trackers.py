"""`harness export` against the real trackers, no mocks and no network: a 2-job sweep (curves with
a validation curve, pictures, rows; no training) goes to MLflow's file store, TensorBoard event
files and W&B offline runs, and each is read back with the tracker's own reader (MlflowClient,
EventAccumulator, W&B's record protobufs): params, step metrics, final metrics, pictures."""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import store, trackers
from harness.curves_store import load_curves
from harness.trackers import to_mlflow
from memseg.cli_errors import UserError
from tests.harness.curves_fixture import SWEEP, make_curves, write_sweep

PICTURES = {f"panel_0{k}.png" for k in range(5)} | {"predictions.gif"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    write_sweep(root)
    return root


@pytest.fixture(scope="module")
def rows(results: Path) -> dict[str, dict]:
    return {r["job_id"]: r for r in store.load_results(results, SWEEP).to_dict("records")}


def _expected(results: Path, job_id: str) -> dict[str, dict[int, float]]:
    curves = load_curves(results, SWEEP, job_id)
    assert curves is not None and curves.has_validation
    return {name: dict(zip(steps, values)) for name, (steps, values) in curves.series().items()}


def _close(a: dict[int, float], b: dict[int, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-6) for k in a)


# --- MLflow ----------------------------------------------------------------------------------------


def test_mlflow_round_trip(results: Path, rows: dict[str, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    dest = tmp_path / "mlruns"
    trackers.export_sweep(results, SWEEP, "mlflow", dest)
    done = trackers.export_sweep(results, SWEEP, "mlflow", dest)  # again: replaces, never duplicates
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # allowed for the export alone
    uri = to_mlflow.tracking_uri(dest)
    with to_mlflow.file_store_allowed(uri):
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(SWEEP)
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id])
        assert sorted(r.info.run_name for r in runs) == sorted(rows) == sorted(e.job_id for e in done.exported)
        for run in runs:
            row, run_id = rows[run.info.run_name], run.info.run_id
            config = json.loads(row["config_json"])
            assert run.data.params["lr"] == str(config["lr"]) and run.data.params["seed"] == str(config["seed"])
            assert run.data.params["memory_size"] == str(row["memory_size"])  # the resolved value, not the config's None
            for name, points in _expected(results, run.info.run_name).items():
                history = client.get_metric_history(run_id, name)
                assert _close({m.step: m.value for m in history}, points), name
            assert math.isclose(run.data.metrics["image_auroc"], row["image_auroc"])
            assert math.isclose(run.data.metrics["final_loss"], row["final_loss"])
            assert {a.path for a in client.list_artifacts(run_id, "pictures")} == {f"pictures/{p}" for p in PICTURES}
            assert run.info.status == "FINISHED" and "simulated anomalies" in run.data.tags["memseg.validation"]


# --- TensorBoard -----------------------------------------------------------------------------------


def test_tensorboard_round_trip(results: Path, rows: dict[str, dict], tmp_path: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    done = trackers.export_sweep(results, SWEEP, "tensorboard", tmp_path / "tb")
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == sorted(rows)
    for exported in done.exported:
        events = EventAccumulator(exported.location, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
        events.Reload()
        for name, points in _expected(results, exported.job_id).items():
            assert _close({e.step: e.value for e in events.Scalars(name)}, points), name
        row = rows[exported.job_id]
        assert math.isclose(events.Scalars("final/image_auroc")[0].value, row["image_auroc"], rel_tol=1e-6)
        assert {t.removeprefix("pictures/") for t in events.Tags()["images"]} == {
            p.removesuffix(".png") for p in PICTURES if p.endswith(".png")
        }
        config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert f"| lr | {json.loads(row['config_json'])['lr']} |" in config


# --- Weights & Biases, offline ---------------------------------------------------------------------


def _wandb_records(path: Path) -> Iterator:
    """The records of an offline run's .wandb file: W&B's LevelDB-style log (32 KiB blocks; each
    chunk: crc32 (4), length (2), type (1: full, 2: first, 3: middle, 4: last)) of its Record protobufs."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos, pending = path.read_bytes(), 32 * 1024, 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _value(item) -> Any:
    return json.loads(item.value_json)


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_round_trip(results: Path, rows: dict[str, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # belt and braces: the export sets offline mode itself
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # the export's dir wins
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):  # W&B's own files stay out of $HOME
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    done = trackers.export_sweep(results, SWEEP, "wandb", tmp_path)
    assert not (tmp_path / "elsewhere").exists()
    for exported in done.exported:
        folder = Path(exported.location)
        assert folder.parent == tmp_path / "wandb" and folder.name.startswith("offline-run-")
        (run_file,) = folder.glob("*.wandb")
        records = list(_wandb_records(run_file))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        assert run.display_name == exported.job_id and run.project == SWEEP
        config = {_key(i): _value(i) for i in run.config.update}
        row = rows[exported.job_id]
        assert config["lr"] == json.loads(row["config_json"])["lr"] and config["memory_size"] == row["memory_size"]
        history: dict[str, dict[int, float]] = {}
        for r in records:
            if r.WhichOneof("record_type") == "history":
                items = {_key(i): _value(i) for i in r.history.item}
                step = int(items.pop("_step"))
                for name, value in items.items():
                    if not name.startswith("_"):
                        history.setdefault(name, {})[step] = float(value)
        expected = _expected(results, exported.job_id)
        assert set(history) == set(expected)
        for name, points in expected.items():
            assert _close(history[name], points), name
        summary = {_key(i): _value(i) for r in records if r.WhichOneof("record_type") == "summary" for i in r.summary.update}
        assert math.isclose(summary["image_auroc"], row["image_auroc"]) and math.isclose(summary["final_loss"], row["final_loss"])
        saved = {f.path for r in records if r.WhichOneof("record_type") == "files" for f in r.files.files}
        assert {f"pictures/{p}" for p in PICTURES} <= saved
        assert {p.name for p in (folder / "files" / "pictures").iterdir()} == PICTURES


def test_export_job_takes_the_row_the_driver_just_wrote(tmp_path: Path):
    """What the driver will call after each committed job (--log-to): its own row dict, not a reloaded frame."""
    from tests.harness.curves_fixture import configs
    from tests.harness.fakes import fake_result

    result = fake_result(configs()[0], "2026-01-01T00:00:00+00:00")
    row = store.row_from_result(store.Attempt(SWEEP, "tiny", attempts=1, worker=None, recorded_at="t", wall_s=1.0), result)
    done = trackers.export_job("tensorboard", row, make_curves(0), (), tmp_path)
    assert done == trackers.Exported("tensorboard", result.job_id, str(tmp_path / result.job_id))
    assert any((tmp_path / result.job_id).glob("events.out.tfevents.*"))


# --- what a user can get wrong ---------------------------------------------------------------------


def test_a_sweep_to_export_must_exist_and_have_a_finished_job(results: Path, tmp_path: Path):
    with pytest.raises(UserError, match=f"no sweep 'nosuch' under {results} \\(sweeps there: {SWEEP}\\)"):
        trackers.export_sweep(results, "nosuch", "tensorboard")
    rows = store.load_results(results, SWEEP)
    for row in rows.to_dict("records"):
        store.write_job(tmp_path, {str(k): v for k, v in row.items()} | {"status": store.STATUS_FAILED})
    with pytest.raises(UserError, match="has no finished job to export"):
        trackers.export_sweep(tmp_path, SWEEP, "tensorboard")


def test_export_cli_says_where_the_runs_went_and_how_to_open_them(results: Path, tmp_path: Path, capsys):
    from harness.__main__ import main

    assert main(["export", "--to", "tensorboard", "--results", str(results), "--dest", str(tmp_path / "tb"), SWEEP]) == 0
    out = capsys.readouterr().out
    assert "2 run(s) sent to tensorboard" in out and f"tensorboard --logdir {tmp_path / 'tb'}" in out


@pytest.mark.parametrize("tracker, package", [("mlflow", "mlflow"), ("wandb", "wandb"), ("tensorboard", "tensorboard")])
def test_a_missing_tracker_library_is_one_message_naming_its_extra(
    results: Path, tracker: str, package: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """The library made unimportable (sys.modules[name] = None: `import` raises ImportError), through the CLI's
    own error path: exit 2, the pip extra, no traceback."""
    from harness.__main__ import main

    monkeypatch.setitem(sys.modules, package, None)
    assert main(["export", "--to", tracker, "--results", str(results), SWEEP]) == 2
    err = capsys.readouterr().err
    assert f"pip install 'memseg-bench[{tracker}]'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_curves_of_the_fixture_have_validation():
    assert make_curves(0).has_validation and not make_curves(0, validation=False).has_validation
