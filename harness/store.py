"""The Parquet result store: one row file per job, written atomically by the driver, plus a
per-image scores file and a copy of the sweep spec.

Under the sweep's folder (harness.paths): sweep.yaml, the spec of the latest run (status reads it);
jobs/<job_id>.parquet, one row whose existence is the commit marker of the job; and
scores/<job_id>.parquet, per-image scores written BEFORE the job file.
A file is written to `.<name>.tmp-<pid>` in the same folder and renamed into place, so a crash
never leaves a half-written result, and temp files are never read.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness import curves_store, maps_store, visuals_store
from harness.paths import is_sweep_dir, job_path, jobs_dir, scores_path, spec_path
from harness.progress import WorkerInfo
from memseg import revision as code_revision
from memseg.atomic import write_atomic, write_text_atomic
from memseg.protocol import LEGACY_PROTOCOL
from memseg.result import METRIC_KEYS, JobFacts, JobResult, job_facts

if TYPE_CHECKING:
    from memseg.config import JobConfig
from memseg.revision import LEGACY_REVISION

STATUS_OK = "ok"
STATUS_FAILED = "failed"


_str, _f64, _i64 = pa.string(), pa.float64(), pa.int64()
JOB_SCHEMA = pa.schema(
    [
        ("job_id", _str),
        ("sweep", _str),
        ("category", _str),
        ("seed", _i64),
        ("ablation", _str),
        ("variant", _str),  # the sweep's recipe variant (harness.sweep); "" without variants and in older rows
        ("profile", _str),
        ("dataset", _str),
        ("dataset_settings", _str),  # JSON: the data set's extras (memseg.data.registry) and the foreground rule
        ("status", _str),
        ("error", _str),
        ("traceback", _str),
        ("image_auroc", _f64),
        ("pixel_auroc", _f64),
        ("pixel_f1", _f64),
        ("pixel_f1_threshold", _f64),
        ("pixel_aupro", _f64),
        # Added with per-data-set scoring: empty (NaN) in rows written before.
        ("image_aupr", _f64),
        ("pixel_aupro_low", _f64),
        # At thresholds fixed on defect-free images before the test set (memseg.calibration): NaN
        # without calibration images and in rows written before; threshold_rule says how ("" then).
        ("seg_f1", _f64),
        ("image_precision", _f64),
        ("image_recall", _f64),
        ("image_f1", _f64),
        ("image_fpr", _f64),
        ("image_threshold", _f64),
        ("pixel_threshold", _f64),
        ("threshold_rule", _str),
        ("steps", _i64),
        ("image_size", _i64),
        ("batch_size", _i64),
        ("memory_size", _i64),  # the effective per-category settings (memseg.config.resolve)
        ("di_scale", _f64),
        ("feature_scale", _f64),
        ("foreground_mask", pa.bool_()),
        ("random_init_real_data", pa.bool_()),  # real images, random-init backbone: near chance (memseg.caveats)
        ("train_s", _f64),
        ("eval_s", _f64),
        ("infer_images_per_s", _f64),
        ("train_steps_per_s", _f64),
        ("sim_images_per_s", _f64),
        ("peak_mem_mb", _f64),
        ("final_loss", _f64),
        # How the training steps ran (memseg.train_step): eager | graph | compile, and why that is not
        # the step_mode asked for ("" when it is). Empty in rows written before they were recorded.
        ("step_path", _str),
        ("step_fallback", _str),
        ("attempts", _i64),
        ("worker_pid", _i64),
        ("device", _str),
        # What the job computed in on its device (memseg.precision): fp32, tf32 or bf16, its recipe's
        # precision resolved there. Empty in failed rows and in rows written before it was recorded.
        ("precision", _str),
        ("device_name", _str),
        ("node", _str),
        ("ray_node_id", _str),
        ("torch", _str),
        ("cuda", _str),
        ("timm", _str),
        ("python", _str),
        ("git_sha", _str),
        # Which code made the row (memseg.provenance, docs/results.md, "What a result means"): the revision of what
        # the numbers mean (rows written before it was recorded read as memseg.revision.LEGACY_REVISION),
        # whether the checkout had uncommitted changes (null: not a git checkout, or not recorded), and
        # the package version (the code's one identity when installed from a wheel, git_sha then "").
        ("revision", _i64),
        ("git_dirty", pa.bool_()),
        ("package_version", _str),
        ("started_at", _str),
        ("finished_at", _str),
        ("recorded_at", _str),
        ("wall_s", _f64),
        ("artefacts_dir", _str),
        ("config_json", _str),
        ("environment_json", _str),
        ("extras_json", _str),
        # The evaluation protocol (memseg.protocol.EvalProtocol); rows written before it was
        # recorded are read with today's protocol (see _fill_legacy_protocol).
        ("eval_resolution", _str),
        ("mask_resize", _str),
        ("map_resize", _str),
        ("aupro_fpr_limit", _f64),
        ("aupro_interpolation", _str),
        ("top_k", _i64),
        ("metrics_version", _str),
        ("scoring", _str),
        ("low_aupro_fpr_limit", _f64),
        # What the job cost (harness.report's GPU-time table): the GPU share its actor held (1/K with
        # --jobs-per-gpu K, 0 on CPUs) and wall_s x that share. Empty in rows written before.
        ("gpu_share", _f64),
        ("gpu_seconds", _f64),
        # The job's training curves (harness.curves_store): their file relative to the sweep folder,
        # "" when it recorded none and in rows written before curves were.
        ("curves_file", _str),
        # Seconds the job spent on its validation curve (--val-every; left out of train_s): 0 without
        # one, empty in rows written before it was recorded.
        ("validation_s", _f64),
    ]
)
SCORES_SCHEMA = pa.schema([("job_id", _str), ("path", _str), ("label", _i64), ("defect_type", _str), ("score", _f64)])
METRICS = METRIC_KEYS  # the metric columns, as memseg.result names them
TIMINGS = ("train_s", "eval_s", "infer_images_per_s", "train_steps_per_s", "sim_images_per_s", "peak_mem_mb", "validation_s")
_ENV_KEYS = ("device", "precision", "device_name", "torch", "cuda", "timm", "python", "git_sha", "package_version")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _config_fields(config: JobConfig, profile_name: str, facts: JobFacts) -> dict[str, Any]:
    """The columns a job's config and its facts (memseg.result.JobFacts, resolved where the job ran) give."""
    settings = facts.settings
    return {
        "job_id": config.job_id,
        "category": config.category,
        "seed": config.seed,
        "ablation": config.ablation,
        "variant": config.variant,
        "profile": profile_name,
        "dataset": config.dataset,
        "dataset_settings": facts.dataset_settings,
        "steps": config.steps,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "memory_size": settings.memory_size,
        "di_scale": settings.di_scale,
        "feature_scale": settings.feature_scale,
        "foreground_mask": settings.foreground_mask,
        "random_init_real_data": facts.random_init_real_data,
        "config_json": config.to_json(),
        **facts.protocol.columns(),
    }


def empty_row() -> dict[str, Any]:
    """A row with every column: NaN for numbers, "" for text, so failed rows share the schema."""
    row: dict[str, Any] = {}
    for f in JOB_SCHEMA:
        row[f.name] = math.nan if f.type == _f64 else (None if f.type in (_i64, pa.bool_()) else "")
    return row


def gpu_fields(wall_s: float, gpu_share: float) -> dict[str, float]:
    """The GPU share a job held and the GPU-seconds it used: its wall time x that share (0 on CPUs,
    whatever the wall time; NaN when the share is not known)."""
    seconds = 0.0 if gpu_share == 0 else _float(wall_s) * gpu_share
    return {"gpu_share": _float(gpu_share), "gpu_seconds": seconds}


@dataclass(frozen=True)
class Attempt:
    """How one try of a job went, as the driver saw it: what its row records beyond the job's own
    result. `gpu_share`: the GPUs its actor held (NaN: not known)."""

    sweep: str
    profile: str = ""
    attempts: int = 1
    worker: WorkerInfo | None = None
    recorded_at: str = ""
    wall_s: float = math.nan
    gpu_share: float = math.nan
    started_at: str = ""  # a failed try's start (a result carries its own)


def row_from_result(how: Attempt, result: JobResult) -> dict[str, Any]:
    """The row of a job that finished. Missing metric or timing keys become NaN."""
    env = dict(result.environment)
    row = empty_row()
    assert result.facts is not None  # JobResult fills it at construction
    row.update(_config_fields(result.config, how.profile, result.facts))
    row.update(_worker_fields(how.worker))
    row.update(
        sweep=how.sweep,
        status=STATUS_OK,
        final_loss=_float(result.final_loss),
        step_path=result.step_path,
        step_fallback=result.step_fallback,
        attempts=how.attempts,
        node=env.get("node") or env.get("hostname") or (how.worker.hostname if how.worker else ""),
        started_at=result.started_at,
        finished_at=result.finished_at,
        recorded_at=how.recorded_at,
        wall_s=how.wall_s,
        **gpu_fields(how.wall_s, how.gpu_share),
        artefacts_dir=result.artefacts_dir or "",
        curves_file=curves_store.link(result.curves, result.job_id),
        environment_json=json.dumps(env, sort_keys=True, default=str),
        extras_json=json.dumps(result.extras, sort_keys=True, default=str),
    )
    row.update({k: _float(result.metrics.get(k)) for k in METRICS})
    row["threshold_rule"] = result.thresholds.describe() if result.thresholds is not None else ""
    row.update({k: _float(result.timings.get(k)) for k in TIMINGS})
    row.update({k: str(env.get(k, "")) for k in _ENV_KEYS})
    row.update(_code_fields(env))
    return row


def current_revision() -> int:
    """The revision of the code in this process (read at call time, so a test can change it)."""
    return code_revision.REVISION


def _code_fields(env: Mapping[str, Any]) -> dict[str, Any]:
    """The revision and git_dirty of a job's environment (memseg.provenance writes them as text):
    the worker's own revision when it recorded one, else this process's (a job function that
    records none, e.g. a test's fake, runs the code of this checkout)."""
    recorded = str(env.get("revision", "")).strip()
    dirty = str(env.get("git_dirty", "")).strip().lower()
    return {
        "revision": int(recorded) if recorded.isdigit() else current_revision(),
        "git_dirty": {"true": True, "false": False}.get(dirty),
    }


def row_from_failure(how: Attempt, config: JobConfig, error: str, traceback: str = "") -> dict[str, Any]:
    """The row of a job that raised or whose workers kept dying: the same columns, metrics NaN. Its
    facts come from memseg (`job_facts`), as a result's do: the harness resolves nothing itself."""
    row = empty_row()
    row.update(_config_fields(config, how.profile, job_facts(config)))
    row.update(_worker_fields(how.worker))
    row.update(
        sweep=how.sweep,
        status=STATUS_FAILED,
        error=error,
        traceback=traceback,
        attempts=how.attempts,
        started_at=how.started_at,
        finished_at=how.recorded_at,
        recorded_at=how.recorded_at,
        wall_s=how.wall_s,
        **gpu_fields(how.wall_s, how.gpu_share),
        revision=current_revision(),  # what the driver ran it as: failed at this revision
    )
    return row


def _worker_fields(worker: WorkerInfo | None) -> dict[str, Any]:
    if worker is None:
        return {"worker_pid": None, "node": "", "ray_node_id": ""}
    return {"worker_pid": worker.pid, "node": worker.hostname, "ray_node_id": worker.node_id}


def _write_atomic(table: pa.Table, path: Path) -> None:
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def write_job(results_dir: str | Path, row: Mapping[str, Any], scores: pd.DataFrame | None = None) -> Path:
    """Write one job's scores file (or remove a stale one), then its row file. A job counts as done
    only once its row file exists, so a crash in between leaves it pending."""
    sweep, job_id = row["sweep"], row["job_id"]
    spath = scores_path(results_dir, sweep, job_id)
    if scores is not None:
        table = pa.Table.from_pandas(scores.assign(job_id=job_id), schema=SCORES_SCHEMA, preserve_index=False)
        _write_atomic(table, spath)
    else:
        spath.unlink(missing_ok=True)
    path = job_path(results_dir, sweep, job_id)
    _write_atomic(pa.Table.from_pylist([dict(row)], schema=JOB_SCHEMA), path)
    return path


def commit(results_dir: str | Path, how: Attempt, result: JobResult) -> Path:
    """Commit a finished job in the one order that keeps a crash safe: its pictures, its training
    curves, its anomaly maps (when it kept them), its per-image scores, and last its row, the commit
    marker. Until the row exists the job is pending, and a re-run rewrites the others."""
    if result.visuals is not None:
        visuals_store.write_visuals(results_dir, how.sweep, result.job_id, result.visuals)
    maps_store.write_maps(results_dir, how.sweep, result.job_id, result.maps)
    curves_store.persist(results_dir, how.sweep, result.job_id, result.curves)
    return write_job(results_dir, row_from_result(how, result), scores_frame(result))


def commit_failure(results_dir: str | Path, how: Attempt, config: JobConfig, error: str, traceback: str = "") -> Path:
    """Commit a failed job: its row, and no scores (a stale scores file of an earlier try goes)."""
    return write_job(results_dir, row_from_failure(how, config, error, traceback), None)


def scores_frame(result: JobResult) -> pd.DataFrame:
    """The per-image scores of a result as a DataFrame (path, label, defect_type, score)."""
    return pd.DataFrame(
        [(s.path, int(s.label), s.defect_type, float(s.score)) for s in result.image_scores],
        columns=["path", "label", "defect_type", "score"],
    ).astype({"path": "object", "label": "int64", "defect_type": "object", "score": "float64"})


def save_spec(results_dir: str | Path, sweep: str, spec_yaml: str) -> Path:
    path = spec_path(results_dir, sweep)
    write_text_atomic(path, spec_yaml)
    return path


def read_spec(results_dir: str | Path, sweep: str) -> str | None:
    """The sweep.yaml a run saved (None when there is none), as text; bytes that are not UTF-8 are
    replaced, so a damaged file is shown or refused by its reader, never a crash."""
    path = spec_path(results_dir, sweep)
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"# unreadable: {err}"


def _job_files(results_dir: str | Path, sweep: str) -> list[Path]:
    folder = jobs_dir(results_dir, sweep)
    # Temp files start with "." and do not end in ".parquet"; only committed files match.
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


class UnreadableFile(ValueError):
    """A Parquet file of a sweep folder that cannot be read: `path`, and `cause` as Arrow says it."""

    def __init__(self, path: Path, cause: str) -> None:
        self.path, self.cause = path, cause
        super().__init__(f"result file {path} is unreadable ({cause}); delete it to re-run that job")


def _read(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise UnreadableFile(path, str(err)) from None
    except (TypeError, ValueError) as err:  # a file that parses but is not a table of this schema
        raise UnreadableFile(path, f"{type(err).__name__}: {err}") from None
    # Older files may lack newer columns: add them empty, in schema order.
    for f in schema:
        if f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(len(table), f.type))
    return table.select(schema.names).cast(schema)


@dataclass(frozen=True)
class JobState:
    """What the store holds of one committed job: its status and the revision that made it."""

    status: str
    revision: int


@dataclass(frozen=True)
class SweepRead:
    """A sweep folder as the one reader (`read_sweep`) found it: the rows it counts (one per job,
    each in the file named after its job id), the jobs it cannot count as committed (`damaged`:
    job id -> what is wrong and what to do; `harness run` re-runs them), and the files it refused
    (`strays`: a row under another name, a second row of one job). Every command reads a sweep
    through it, so none crashes on a damaged file and none counts a row twice."""

    rows: pd.DataFrame
    damaged: Mapping[str, str]
    strays: tuple[str, ...] = ()

    @property
    def states(self) -> dict[str, JobState]:
        return states_of(self.rows)

    def notes(self) -> list[str]:
        """One line per damaged job and refused file, for the views to print."""
        return [f"job {job_id}: {why}" for job_id, why in sorted(self.damaged.items())] + list(self.strays)


def read_sweep(results_dir: str | Path, sweep: str) -> SweepRead:
    """Every committed job of one sweep, checked: its row file readable and holding that job's one
    row, and an ok job's scores file, and its curves file when the row links one, there and
    readable. A job that fails a check is damaged, not done; a file that holds another job's row
    is a stray, not counted."""
    tables: list[pa.Table] = []
    damaged: dict[str, str] = {}
    strays: list[str] = []
    for path in _job_files(results_dir, sweep):
        try:
            table = _read(path, JOB_SCHEMA)
        except UnreadableFile as err:
            damaged[path.stem] = f"its row file {err.path} is unreadable ({err.cause})"
            continue
        ids = table["job_id"].to_pylist()
        if ids != [path.stem]:
            strays.append(
                f"{path} holds the row(s) of {', '.join(map(str, ids)) or 'no job'}, not of {path.stem}: not counted "
                "(a row file is named after its job id); delete it"
            )
            continue
        tables.append(table)
    rows = _rows_of(pa.concat_tables(tables) if tables else JOB_SCHEMA.empty_table())
    for row in records(rows):
        why = _damage(results_dir, sweep, row)
        if why:
            damaged[str(row.job_id)] = why
    damaged = {job_id: f"{why}: not counted; `harness run` runs the job again" for job_id, why in damaged.items()}
    if damaged:
        rows = rows[~rows["job_id"].isin(list(damaged))].reset_index(drop=True)
    return SweepRead(rows, damaged, tuple(strays))


def _damage(results_dir: str | Path, sweep: str, row: Any) -> str:
    """What is missing or unreadable of a committed ok job's files ("" when nothing)."""
    if row.status != STATUS_OK:
        return ""
    files = [("scores", scores_path(results_dir, sweep, row.job_id))]
    if row.curves_file:
        files.append(("curves", Path(results_dir) / sweep / row.curves_file))
    for kind, path in files:
        if not path.is_file():
            return f"its {kind} file {path} is missing"
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowInvalid) as err:
            return f"its {kind} file {path} is unreadable ({err})"
    return ""


def job_states(results_dir: str | Path, sweep: str) -> dict[str, JobState]:
    """job_id -> status and revision of every job of the sweep that `read_sweep` counts (a damaged
    one is not there: it runs again)."""
    return read_sweep(results_dir, sweep).states


def states_of(rows: pd.DataFrame) -> dict[str, JobState]:
    """job_id -> status and revision of the loaded rows of a sweep (`load_results`): the same as
    `job_states`, from rows a command has read already."""
    return {str(j): JobState(str(s), int(r)) for j, s, r in zip(rows["job_id"], rows["status"], rows["revision"])}


def job_statuses(results_dir: str | Path, sweep: str) -> dict[str, str]:
    """job_id -> status of every committed job of the sweep, whatever its revision."""
    return {job_id: state.status for job_id, state in job_states(results_dir, sweep).items()}


@dataclass(frozen=True)
class ToRun:
    """The one skip rule's answer (`to_run`), for the driver and the plan alike: the jobs to run,
    those kept as done or failed, and those whose committed result is of another revision."""

    run: tuple[str, ...]  # in the order given
    done: tuple[str, ...]  # ok at this revision or an accepted one: not re-run
    failed: tuple[str, ...]  # failed at this revision or an accepted one, not re-run (no retry_failed)
    stale: tuple[tuple[str, int], ...]  # (job_id, revision): committed at another revision, re-run
    revision: int  # the revision this run writes
    stale_failed: tuple[str, ...] = ()  # those of `stale` whose result was a failure
    damaged: tuple[tuple[str, str], ...] = ()  # (job_id, why): a committed job read_sweep cannot count; re-run
    strays: tuple[str, ...] = ()  # files of the sweep folder read_sweep refused (not counted)

    def stale_by_revision(self) -> dict[int, int]:
        """Revision -> number of jobs re-run because their result is of that revision."""
        counts: dict[int, int] = {}
        for _, revision in self.stale:
            counts[revision] = counts.get(revision, 0) + 1
        return dict(sorted(counts.items()))

    def describe_stale(self) -> str:
        """ "12 done at revision 1, re-run at revision 2 (--accept-revision 1 keeps them)", or ""; a
        failed result of another revision is counted apart ("2 failed at revision 1")."""
        failed = set(self.stale_failed)
        counts: dict[tuple[int, bool], int] = {}
        for job_id, revision in self.stale:
            key = (revision, job_id in failed)
            counts[key] = counts.get(key, 0) + 1
        if not counts:
            return ""
        done = ", ".join(f"{n} {'failed' if bad else 'done'} at revision {r}" for (r, bad), n in sorted(counts.items()))
        flags = " ".join(f"--accept-revision {r}" for r in self.stale_by_revision())
        return f"{done}, re-run at revision {self.revision} ({flags} keeps them)"


def to_run(
    job_ids: Iterable[str],
    states: Mapping[str, JobState],
    *,
    force: bool = False,
    retry_failed: bool = False,
    accept_revisions: Iterable[int] = (),
    revision: int | None = None,
) -> ToRun:
    """THE skip rule: a job runs unless its committed result is of this revision (or one in
    `accept_revisions`) and is ok, or failed without `retry_failed`; `force` runs every job. A
    result of any other revision is not done: the job runs again (the row is replaced)."""
    current = current_revision() if revision is None else revision
    accepted = {current, *accept_revisions}
    run: list[str] = []
    done: list[str] = []
    failed: list[str] = []
    stale: list[tuple[str, int]] = []
    stale_failed: list[str] = []
    for job_id in job_ids:
        state = None if force else states.get(job_id)
        if state is not None and state.revision not in accepted:
            stale.append((job_id, state.revision))
            if state.status != STATUS_OK:
                stale_failed.append(job_id)
        elif state is not None and state.status == STATUS_OK:
            done.append(job_id)
            continue
        elif state is not None and state.status == STATUS_FAILED and not retry_failed:
            failed.append(job_id)
            continue
        run.append(job_id)
    return ToRun(tuple(run), tuple(done), tuple(failed), tuple(stale), current, tuple(stale_failed))


@dataclass(frozen=True)
class Tally:
    """The jobs of a sweep by what a run would do with them: done (ok at this revision or an
    accepted one), failed (likewise), stale (committed at another revision: re-run) and pending
    (never committed). THE count of job statuses: `status`, the run's banner and dry run (through
    the same rule, `to_run`), the live view and the reports all take it from here, so they agree."""

    done: tuple[str, ...]
    failed: tuple[str, ...]
    pending: tuple[str, ...]
    stale: tuple[str, ...] = ()

    @classmethod
    def of(cls, job_ids: Iterable[str], states: Mapping[str, JobState], accept_revisions: Iterable[int] = ()) -> Tally:
        """The tally of `job_ids` under the skip rule, on the committed `states` (`job_states`, `states_of`)."""
        plan = to_run(job_ids, states, accept_revisions=accept_revisions)
        return cls(
            done=plan.done,
            failed=plan.failed,
            pending=tuple(j for j in plan.run if j not in states),
            stale=tuple(j for j, _ in plan.stale),
        )

    @property
    def total(self) -> int:
        return len(self.done) + len(self.failed) + len(self.pending) + len(self.stale)


def plan_run(
    results_dir: str | Path,
    sweep: str,
    job_ids: Iterable[str],
    *,
    force: bool = False,
    retry_failed: bool = False,
    accept_revisions: Iterable[int] = (),
) -> ToRun:
    """`to_run` on what the store holds of `sweep` (nothing is read with `force`), through the one
    reader: a damaged job is not done, so it runs again, and the plan says why."""
    if force:
        return to_run(job_ids, {}, force=True)
    read, ids = read_sweep(results_dir, sweep), tuple(job_ids)
    plan = to_run(ids, read.states, retry_failed=retry_failed, accept_revisions=accept_revisions)
    damaged = tuple((j, read.damaged[j]) for j in ids if j in read.damaged)
    others = tuple(f"job {j} (not a job of this run): {why}" for j, why in read.damaged.items() if j not in ids)
    return dataclasses.replace(plan, damaged=damaged, strays=read.strays + others)


def list_sweeps(results_dir: str | Path) -> list[str]:
    """Names of the sweeps under `results_dir` (folders with a jobs/ folder or a sweep.yaml)."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_sweep_dir(p))


def load_results(results_dir: str | Path, sweep: str | None = None) -> pd.DataFrame:
    """The rows `read_sweep` counts, of one sweep (or of all sweeps), as a DataFrame with the full
    schema, empty (with the columns) when there is none. A view that shows what it left out reads
    `read_sweep` itself."""
    sweeps = [sweep] if sweep is not None else list_sweeps(results_dir)
    frames = [read_sweep(results_dir, s).rows for s in sweeps]
    if len(frames) == 1:
        return frames[0]
    return _rows_of(JOB_SCHEMA.empty_table()) if not frames else pd.concat(frames, ignore_index=True)


def _rows_of(table: pa.Table) -> pd.DataFrame:
    """Job rows as read, with what older rows lack filled in as they meant it."""
    rows = _fill_legacy_revision(_fill_legacy_protocol(table.to_pandas()))
    rows["variant"] = variants_of(rows)  # rows written before variants existed: no variant
    rows["curves_file"] = rows["curves_file"].fillna("")  # rows written before curves: none
    rows["threshold_rule"] = rows["threshold_rule"].fillna("")  # rows written before calibration: none
    return rows


def _fill_legacy_revision(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows from before revisions were recorded read as LEGACY_REVISION (memseg.revision)."""
    return rows.astype({"revision": "Int64"}).fillna({"revision": LEGACY_REVISION}).astype({"revision": "int64"})


def _fill_legacy_protocol(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows from before a protocol column was recorded have it empty: they were all measured with
    the protocol of that day (model resolution, nearest-resized masks, AUPRO to 0.3 interpolated
    linearly, metric code version 1, MVTec AD's scoring whatever the data set, no second AUPRO)
    and the top-k of their own config."""
    rows = _fill_scoring(rows)
    missing = rows["metrics_version"].isna() | (rows["metrics_version"] == "")
    if not missing.any():
        return rows
    rows = rows.copy()
    for name, value in LEGACY_PROTOCOL.columns().items():
        if name == "top_k":
            continue
        rows.loc[missing, name] = value
    top_k = [
        json.loads(text).get("top_k", LEGACY_PROTOCOL.top_k) if text else LEGACY_PROTOCOL.top_k
        for text in rows.loc[missing, "config_json"]
    ]
    rows.loc[missing, "top_k"] = top_k
    return rows.astype({"top_k": "int64"})


def _fill_scoring(rows: pd.DataFrame) -> pd.DataFrame:
    """The scoring protocol's columns of rows written before each data set had its own."""
    missing = rows["scoring"].isna() | (rows["scoring"] == "")
    if not missing.any():
        return rows
    rows = rows.copy()
    rows.loc[missing, "scoring"] = LEGACY_PROTOCOL.scoring
    rows.loc[missing, "low_aupro_fpr_limit"] = LEGACY_PROTOCOL.low_aupro_fpr_limit
    return rows


def variants_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's recipe variant: "" without variants, in rows written before them, and for frames
    without the column."""
    return rows["variant"].fillna("").astype(str) if "variant" in rows else pd.Series("", index=rows.index, dtype=object)


def group_label(ablation: str, variant: str) -> str:
    """How tables and comparisons name a group of rows: the ablation, and the recipe variant when there is one."""
    return f"{ablation} · {variant}" if variant else ablation


def ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of jobs that finished (status ok): what every table, chart and export counts."""
    return frame[frame["status"] == STATUS_OK]


def failed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of jobs that failed (any status but ok): what the views list apart."""
    return frame[frame["status"] != STATUS_OK]


def records(frame: pd.DataFrame) -> list[Any]:
    """The rows of a results frame, each with its columns as attributes (pandas' itertuples).
    Typed Any: a row's cells are whatever its column holds."""
    return list(frame.itertuples())


def load_job(results_dir: str | Path, sweep: str, job_id: str) -> dict[str, Any]:
    """The committed row of one job, as a dict: what a live tracker reads when that job finishes
    (one file, not the whole sweep). ValueError when the job has no readable row."""
    path = job_path(results_dir, sweep, job_id)
    if not path.exists():
        raise ValueError(f"job {job_id} of sweep {sweep!r} has no committed row ({path})")
    record = _rows_of(_read(path, JOB_SCHEMA)).to_dict("records")[0]
    return {str(k): v for k, v in record.items()}


def load_scores(results_dir: str | Path, sweep: str, job_id: str) -> pd.DataFrame:
    return _read(scores_path(results_dir, sweep, job_id), SCORES_SCHEMA).to_pandas()
