"""One MemSeg job: JobConfig in, JobResult out. Load data, fill the memory bank, train, evaluate
the FINAL model, time everything and save the artefacts.

The training loop reads top to bottom in `train_model`; there is no trainer framework. The harness
runs this same function inside a Ray actor; it also runs alone (`python -m memseg train`).
"""

from __future__ import annotations

import dataclasses
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch

from memseg import artefacts, calibration, validation
from memseg import checkpoint as train_checkpoint
from memseg import revision as code_revision
from memseg.build import build_model, build_simulator, load_texture_bank, loss_settings
from memseg.checkpoint import TrainCheckpoint
from memseg.clock import utc_now
from memseg.config import JobConfig, resolve
from memseg.curves import CurveRecorder, TrainingCurves
from memseg.data.images import original_size
from memseg.data.loading import load_category
from memseg.data.types import CategoryData
from memseg.metrics import Evaluation, evaluate, evaluate_native, image_scores, image_threshold_metrics, seg_f1, seg_f1_native
from memseg.model import MemSeg
from memseg.official import OfficialImport, import_official
from memseg.precision import ComputePrecision, autocast, computing_in, resolve_precision
from memseg.protocol import EvalProtocol, protocol_for
from memseg.provenance import code_identity
from memseg.result import THRESHOLDED, THRESHOLDS, ImageScore, JobResult, MapSet, Progress, Thresholds
from memseg.simulate import AnomalySimulator
from memseg.train_step import (
    LOSS_PARTS,
    StepParts,
    StepPath,
    StepRunner,
    fit_restored_groups,
    make_optimizer,
    make_scheduler,
    plan_step_path,
    to_float,
)
from memseg.validation import SEED_OFFSET as VALIDATION_SEED_OFFSET
from memseg.validation import ValidationSet, make_validation_set, split_validation
from memseg.visuals import MAX_CURVE_POINTS, job_visuals

ProgressFn = Callable[[Progress], None]
CheckpointFn = Callable[[TrainCheckpoint], None]
# Called with (step, point) as each validation point is computed, before training goes on: a
# search can stop a job on its curve (harness.tune), which never sees the test set.
ValidationFn = Callable[[int, validation.ValidationPoint], None]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the job stops at once instead of reporting
    numbers from a diverged model."""


@dataclass(frozen=True)
class TrainOutcome:
    final_loss: float
    train_s: float
    steps_per_s: float
    resumed_from_step: int = 0
    step_path: StepPath = field(default_factory=lambda: StepPath("eager"))
    curves: TrainingCurves | None = None
    validation_s: float = 0.0  # time spent on the validation curve, left out of train_s
    validation_rule: str = ""  # how the held-out images were chosen ("" without a validation curve)


def run(
    config: JobConfig,
    on_progress: ProgressFn | None = None,
    *,
    on_checkpoint: CheckpointFn | None = None,
    checkpoint_every: int = 0,
    resume: TrainCheckpoint | None = None,
    on_validation: ValidationFn | None = None,
) -> JobResult:
    """Train MemSeg on one category and evaluate the final model on its test set.

    Deterministic for a fixed seed on CPU. Raises on any failure (bad data, non-finite loss,
    out of memory); the caller decides what a failure means for a sweep.

    Every `checkpoint_every` steps (0: never) the training state goes to `on_checkpoint`; a run
    given that state as `resume` skips the steps it covers and ends with the same model (on the
    CPU, bit for bit) as a run that never stopped. Each validation point (config.val_every) also
    goes to `on_validation` as it is computed.
    """
    report = on_progress or (lambda _p: None)
    if resume is not None:
        check_resume(resume, config)  # before any work: a wrong checkpoint is the caller's bug
    hooks = CheckpointHooks(on_checkpoint, checkpoint_every, resume)
    result = _train_then(config, report, hooks, on_validation, test_eval=True)
    assert isinstance(result, JobResult)
    return result


def validate(
    config: JobConfig, on_progress: ProgressFn | None = None, *, on_validation: ValidationFn | None = None
) -> TrainOutcome:
    """Train as `run` does and return how training went, its validation curve included, WITHOUT
    evaluating on the test set: what a recipe search runs (harness.tune), so that choosing a
    recipe never reads a test image. config.val_every must be set: the curve is all it gives."""
    if not config.val_every:
        raise ValueError(f"job {config.job_id}: a run without the test set needs a validation curve (val_every >= 1)")
    outcome = _train_then(config, on_progress or (lambda _p: None), CheckpointHooks(), on_validation, test_eval=False)
    assert isinstance(outcome, TrainOutcome)
    return outcome


def _train_then(
    config: JobConfig, report: ProgressFn, hooks: CheckpointHooks, on_validation: ValidationFn | None, *, test_eval: bool
) -> JobResult | TrainOutcome:
    """Load, fill the memory bank, train; then evaluate the final model on the test set, or, with
    test_eval False, return the training outcome with the test set untouched."""
    started_at = utc_now()
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device.type)
    # fork_rng keeps the caller's global RNG untouched: a job is a pure function of its config.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), computing_in(precision, device.type):
        torch.manual_seed(config.seed)
        report(Progress("load", 0, 1))
        data = load_data(config) if test_eval else load_train_data(config)
        settings = resolve(config)
        memory_images, train_images = split_memory(data.train_images, settings.memory_size)
        calibration_images, calibration_source = data.validation_images, calibration.VALIDATION
        if config.calibrate_images:  # the last training images, never the memory bank's nor the test set
            train_images, calibration_images = calibration.split_calibration(train_images, config.calibrate_images)
            calibration_source = calibration.HELD_OUT.format(count=config.calibrate_images)
        held_out_images = None
        if config.val_every:  # the last training images, never the test set (memseg.validation)
            train_images, held_out_images = split_validation(train_images, config.val_images)
        texture_bank = load_texture_bank(config).to(device)

        model = build_model(config).to(device)
        report(Progress("memory", 0, 1))
        fill_memory(model, memory_images, device, precision)
        simulator = build_simulator(config, texture_bank)
        held_out = None
        if held_out_images is not None:
            held_out = make_validation_set(held_out_images, simulator, config.seed + VALIDATION_SEED_OFFSET, device)

        sim_images_per_s = measure_simulation(simulator, train_images, config, device)
        outcome = train_model(model, simulator, train_images, config, device, report, hooks, held_out, on_validation)
        if not test_eval:
            return outcome
        # The thresholds are fixed on defect-free images before any test image is read.
        thresholds = None
        if calibration_images is not None and len(calibration_images):
            thresholds = calibrate_thresholds(model, calibration_images, calibration_source, config, device, report)
        # Only now, with training over, does any test image reach the model (tests/memseg/test_job.py).
        timings = {"sim_images_per_s": sim_images_per_s, "validation_s": outcome.validation_s}
        return evaluate_model(model, data, config, device, report, started_at, outcome, timings, thresholds)


def calibrate_thresholds(
    model: MemSeg, images: torch.Tensor, source: str, config: JobConfig, device: torch.device, report: ProgressFn
) -> Thresholds:
    """The image and pixel thresholds of the trained model on defect-free `images` (memseg.calibration),
    scored as the test images will be: the same maps, the same top-k image score."""
    maps, _, _ = predict_maps(model, images, config, device, report, phase="calibrate")
    return calibration.calibrate(maps, image_scores(maps, top_k=protocol_for(config).top_k), source)


def fill_memory(model: MemSeg, memory_images: torch.Tensor, device: torch.device, precision: ComputePrecision) -> None:
    """Fill the bank in the job's precision: under the same autocast as every forward pass, so the
    bank and the features compared with it are computed alike (a normal image that is in the bank
    gives DI exactly 0 in bf16 as in float32; tests/memseg/test_precision.py)."""
    with torch.no_grad(), autocast(precision, device.type):
        model.fill_memory(to_float(memory_images.to(device)))


def run_official(
    config: JobConfig,
    state: dict[str, torch.Tensor],
    on_progress: ProgressFn | None = None,
    feature_weights: str = "imagenet",
) -> tuple[JobResult, OfficialImport]:
    """Evaluate the official released weights (`state`, an areylng/MemSeg state dict) with our
    inference path and metrics: no training; the memory bank rebuilt the official way (the first
    N sorted normal training images, N from the category table). config must be the full model.
    Its `encoder_segment` becomes the segment encoder; the feature encoder (stem, F1-F3, the
    bank) is `feature_weights` (imagenet | none | a ResNet18 state-dict file), as the official
    `Get_feature` is ImageNet's ResNet18."""
    if config.ablation != "full":
        raise ValueError(f"official weights are the full model; got ablation {config.ablation!r}")
    report = on_progress or (lambda _p: None)
    started_at = utc_now()
    device = resolve_device(config.device)
    report(Progress("load", 0, 1))
    data = load_data(config)
    memory_images, _ = split_memory(data.train_images, resolve(config).memory_size)
    model = build_model(config, backbone_weights=feature_weights)  # the segment encoder's come from `state`
    imported = import_official(model, state)
    model = model.to(device)
    precision = resolve_precision(config.precision, device.type)
    with computing_in(precision, device.type):
        report(Progress("memory", 0, 1))
        fill_memory(model, memory_images, device, precision)
        return evaluate_model(model, data, config, device, report, started_at), imported


def load_data(config: JobConfig) -> CategoryData:
    """The job's category at its image size; with native-resolution evaluation each test mask is
    also kept at its original size."""
    native = protocol_for(config).eval_resolution == "native"
    root = Path(_data_root(config))
    return load_category(
        config.dataset, root, config.category, config.image_size, native_masks=native, private=config.predict_private
    )


def load_train_data(config: JobConfig) -> CategoryData:
    """The job's category with its normal training images only: no test file is opened."""
    return load_category(config.dataset, Path(_data_root(config)), config.category, config.image_size, train_only=True)


def evaluate_model(
    model: MemSeg,
    data: CategoryData,
    config: JobConfig,
    device: torch.device,
    report: ProgressFn,
    started_at: str,
    outcome: TrainOutcome | None = None,
    extra_timings: dict[str, float] | None = None,
    thresholds: Thresholds | None = None,
) -> JobResult:
    """Evaluate `model` (trained, or imported: outcome None) on the category's test set, build
    the JobResult and save the artefacts when config.out_dir is set. With `thresholds` (fixed
    before), the test set is also scored at them (threshold_metrics)."""
    maps, infer_images_per_s, eval_s = predict_maps(model, data.test_images, config, device, report)
    protocol = protocol_for(config)
    scores = image_scores(maps, top_k=protocol.top_k)
    evaluation = evaluate_under(protocol, scores, data, maps)
    metrics = {**evaluation.metrics, **threshold_metrics(protocol, thresholds, scores, data, maps)}
    image_results = tuple(
        ImageScore(path=p, label=int(label), defect_type=d, score=float(s))
        for p, label, d, s in zip(data.test_paths, data.test_labels.tolist(), data.test_defect_types, scores.tolist())
    )
    timings = {
        "train_s": outcome.train_s if outcome else 0.0,
        "eval_s": eval_s,
        "infer_images_per_s": infer_images_per_s,
        "train_steps_per_s": outcome.steps_per_s if outcome else 0.0,
        **(extra_timings or {}),
        "peak_mem_mb": peak_memory_mb(device),
    }
    result = JobResult(
        job_id=config.job_id,
        config=config,
        metrics=metrics,
        image_scores=image_results,
        timings=timings,
        environment=environment(device, resolve_precision(config.precision, device.type)),
        artefacts_dir=None,
        started_at=started_at,
        finished_at=utc_now(),
        final_loss=outcome.final_loss if outcome else math.nan,
        extras=_extras(outcome),
        visuals=job_visuals(data, maps, scores, evaluation),
        protocol=protocol,
        step_path=outcome.step_path.name if outcome else "",
        step_fallback=outcome.step_path.fallback if outcome else "",
        curves=outcome.curves if outcome else None,
        thresholds=thresholds,
        maps=kept_maps(model, data, maps, config, device, report),
    )
    if config.out_dir is not None:
        out = artefacts.save(result, model, Path(config.out_dir) / config.job_id)
        result = artefacts.with_dir(result, out)
    return result


def _extras(outcome: TrainOutcome | None) -> dict[str, object]:
    """What a result row records of how training went beyond its timings: where a resumed job
    started, and the rule that chose the validation curve's held-out images."""
    if outcome is None:
        return {}
    extras: dict[str, object] = {"resumed_from_step": outcome.resumed_from_step}
    if outcome.validation_rule:
        extras["validation_rule"] = outcome.validation_rule
    return extras


def evaluate_under(protocol: EvalProtocol, scores: torch.Tensor, data: CategoryData, maps: torch.Tensor) -> Evaluation:
    """The metrics (and plotted curves) of the final model under `protocol`: pixel metrics at the
    model's resolution (masks resized nearest) or at each mask's original size (maps upsampled
    bilinearly)."""
    limit, low = protocol.aupro_fpr_limit, protocol.low_aupro_fpr_limit
    if protocol.eval_resolution == "native":
        return evaluate_native(scores, data.test_labels, maps, data.test_masks_native, limit, MAX_CURVE_POINTS, low)
    return evaluate(scores, data.test_labels, maps, data.test_masks, limit, MAX_CURVE_POINTS, low)


def kept_maps(
    model: MemSeg, data: CategoryData, test_maps: torch.Tensor, config: JobConfig, device: torch.device, report: ProgressFn
) -> tuple[MapSet, ...]:
    """The maps a job keeps when asked: the test set's (save_maps) and, with predict_private, those
    of the test images without ground truth, predicted after the test set was scored, one MapSet per
    split; each with its images' original sizes (read from their headers)."""
    if not (config.save_maps or config.predict_private):
        return ()
    sets = [_map_set("test", data.test_paths, data.test_defect_types, test_maps)]
    if config.predict_private and data.private_images is not None and len(data.private_images):
        private_maps, _, _ = predict_maps(model, data.private_images, config, device, report, phase="private")
        for split in dict.fromkeys(s for s, _ in data.private_items):
            index = [i for i, (s, _) in enumerate(data.private_items) if s == split]
            paths = tuple(data.private_items[i][1] for i in index)
            sets.append(_map_set(split, paths, ("",) * len(paths), private_maps[index]))
    return tuple(sets)


def _map_set(split: str, paths: tuple[str, ...], defect_types: tuple[str, ...], maps: torch.Tensor) -> MapSet:
    sizes = tuple(original_size(p) for p in paths)
    return MapSet(split, paths, defect_types, sizes, maps.float().numpy().copy())


def threshold_metrics(
    protocol: EvalProtocol, thresholds: Thresholds | None, scores: torch.Tensor, data: CategoryData, maps: torch.Tensor
) -> dict[str, float]:
    """The test set scored at thresholds fixed without it: image precision, recall, F1 and FPR at the
    image threshold, SegF1 at the pixel threshold (at the protocol's resolution; NaN without masks),
    and the two thresholds. All NaN without thresholds."""
    keys = (*THRESHOLDED, *THRESHOLDS)
    if thresholds is None:
        return dict.fromkeys(keys, math.nan)
    out = image_threshold_metrics(scores, data.test_labels, thresholds.image)
    out |= {"image_threshold": thresholds.image, "pixel_threshold": thresholds.pixel, "seg_f1": math.nan}
    if protocol.eval_resolution == "native" and data.test_masks_native is not None:
        out["seg_f1"] = seg_f1_native(maps, data.test_masks_native, thresholds.pixel)
    elif data.test_masks is not None:
        out["seg_f1"] = seg_f1(maps, data.test_masks, thresholds.pixel)
    return {k: out[k] for k in keys}


@dataclass(frozen=True)
class CheckpointHooks:
    save: CheckpointFn | None = None
    every: int = 0
    resume: TrainCheckpoint | None = None

    def due(self, steps_done: int, total: int) -> bool:
        return self.save is not None and self.every > 0 and steps_done % self.every == 0 and steps_done < total


def check_resume(checkpoint: TrainCheckpoint, config: JobConfig) -> None:
    """A checkpoint resumes only the job that wrote it, written by code of this revision, and only
    before its last step."""
    if checkpoint.job_id != config.job_id:
        raise ValueError(f"the checkpoint is of job {checkpoint.job_id}, not of {config.job_id}")
    if checkpoint.revision != code_revision.REVISION:
        raise ValueError(
            f"the checkpoint of job {config.job_id} was written at revision {checkpoint.revision}, "
            f"this code is revision {code_revision.REVISION}: it cannot be resumed"
        )
    if not 0 < checkpoint.step < config.steps:
        raise ValueError(f"the checkpoint of job {config.job_id} is at step {checkpoint.step}, outside 1..{config.steps - 1}")


def train_model(
    model: MemSeg,
    simulator: AnomalySimulator,
    train_images: torch.Tensor,
    config: JobConfig,
    device: torch.device,
    report: ProgressFn,
    hooks: CheckpointHooks = CheckpointHooks(),
    held_out: ValidationSet | None = None,
    on_validation: ValidationFn | None = None,
) -> TrainOutcome:
    """The recipe's optimizer and schedule (`make_scheduler`): officially SGD with one cosine to 0,
    or AdamW with a linear warm-up then a cosine; half of each batch gets a simulated anomaly.
    One step is `memseg.train_step.train_step`, run eagerly, replayed from a CUDA graph or under
    torch.compile as config.step_mode (and compile) ask; the outcome says which way it ran.

    The only host-device syncs are at the logging interval: the loss is checked for NaN/inf on
    the device every step and the first bad step is remembered, so a diverged job still stops
    with the exact step in its error. At that interval the loss, its L1 and focal parts, the lr
    and the mean step time go into the training curve (the lr is computed on the host). With a
    held-out set, every config.val_every steps and after the last one it is scored
    (memseg.validation: it only watches; the final model is the one reported) and the point
    handed to `on_validation`.
    """
    path = plan_step_path(config.step_mode, config.compile, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, config.optimizer, config.lr, config.weight_decay, device, path, config.momentum)
    scheduler = make_scheduler(optimizer, config)
    sampler = torch.Generator(device=device).manual_seed(config.seed)
    sim_generator = torch.Generator(device=device).manual_seed(config.seed + 1)
    images_on_device = train_images.to(device)
    if device.type == "cuda":
        images_on_device = images_on_device.contiguous(memory_format=torch.channels_last)

    generators = {"sampler": sampler, "simulation": sim_generator}
    first_step, train_s_before, curves = 0, 0.0, CurveRecorder()
    if hooks.resume is not None:
        train_checkpoint.restore(hooks.resume, model, optimizer, scheduler, generators, device)
        fit_restored_groups(optimizer, config.lr, path)
        first_step, train_s_before = hooks.resume.step, float(hooks.resume.meta["train_s"])
        curves = CurveRecorder.from_json(hooks.resume.meta.get("curves"))
        report(Progress("train", first_step, config.steps))

    parts = StepParts(
        net=torch.compile(model) if path.name == "compile" else model,
        simulator=simulator,
        optimizer=optimizer,
        images=images_on_device,
        sampler=sampler,
        sim_generator=sim_generator,
        batch_size=config.batch_size,
        precision=resolve_precision(config.precision, device.type),
        loss=loss_settings(config),
        step=torch.full((), first_step, dtype=torch.long, device=device),
        first_bad_step=torch.full((), -1, dtype=torch.long, device=device),
    )
    run_step = StepRunner(parts, path)
    losses = torch.zeros(len(LOSS_PARTS), device=device)
    top_k, validation_s = protocol_for(config).top_k, 0.0
    model.train()
    start = interval_start = time.perf_counter()
    interval_first = first_step
    for step in range(first_step, config.steps):
        lr = scheduler.base_lrs[0] * scheduler.lr_lambdas[0](step)  # the lr this step runs at, on the host
        losses = run_step()
        scheduler.step()
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            values = dict(zip(LOSS_PARTS, losses.tolist()))  # the interval's one sync
            bad_step = int(parts.first_bad_step)
            if bad_step >= 0:
                raise NonFiniteLossError(f"loss became non-finite at step {bad_step} of {config.steps}")
            step_time_s = (time.perf_counter() - interval_start) / (step + 1 - interval_first)
            curves.add_train(step + 1, values | {"lr": lr, "step_time_s": step_time_s})
            report(Progress("train", step + 1, config.steps, values["loss"]))
            interval_start, interval_first = time.perf_counter(), step + 1
        if held_out is not None and ((step + 1) % config.val_every == 0 or step + 1 == config.steps):
            with autocast(parts.precision, device.type):
                point = validation.evaluate(model, held_out, parts.loss, top_k)
            curves.add_validation(step + 1, dataclasses.asdict(point))
            validation_s += point.seconds
            if on_validation is not None:
                on_validation(step + 1, point)
            interval_start = time.perf_counter()
        if hooks.due(step + 1, config.steps) and hooks.save is not None:
            if int(parts.first_bad_step) >= 0:  # never hand on the state of a diverged model
                raise NonFiniteLossError(f"loss became non-finite at step {int(parts.first_bad_step)} of {config.steps}")
            elapsed = train_s_before + time.perf_counter() - start - validation_s
            hooks.save(
                train_checkpoint.capture(
                    config.job_id, step + 1, model, optimizer, scheduler, generators, device, elapsed, curves.to_json()
                )
            )
            interval_start = time.perf_counter()
    _sync(device)
    segment_s = time.perf_counter() - start - validation_s
    final_loss = float(losses[0])
    run_step.close()
    return TrainOutcome(
        final_loss=final_loss,
        train_s=train_s_before + segment_s,
        steps_per_s=(config.steps - first_step) / segment_s,
        resumed_from_step=first_step,
        step_path=run_step.path,
        curves=curves.freeze(),
        validation_s=validation_s,
        validation_rule=held_out.rule if held_out is not None else "",
    )


@torch.no_grad()
def predict_maps(
    model: MemSeg, images: torch.Tensor, config: JobConfig, device: torch.device, report: ProgressFn, phase: str = "eval"
) -> tuple[torch.Tensor, float, float]:
    """Anomaly maps (N, S, S) float32 on the CPU for uint8 images, the inference throughput in
    images/s (forward passes only, timed with the device synchronised), and the eval wall time.
    `phase` names the progress events (eval: the test set; calibrate: the calibration images)."""
    model.eval()
    precision = resolve_precision(config.precision, device.type)
    maps = []
    forward_s = 0.0
    start = time.perf_counter()
    # One untimed forward first: cuDNN autotuning and allocator growth belong to no image.
    with autocast(precision, device.type):
        model(to_float(images[: config.eval_batch_size].to(device)))
    for first in range(0, len(images), config.eval_batch_size):
        batch = to_float(images[first : first + config.eval_batch_size].to(device))
        _sync(device)
        t0 = time.perf_counter()
        with autocast(precision, device.type):
            anomaly = model.anomaly_map(model(batch)).float()
        _sync(device)
        forward_s += time.perf_counter() - t0
        maps.append(anomaly.cpu())
        report(Progress(phase, min(first + config.eval_batch_size, len(images)), len(images)))
    eval_s = time.perf_counter() - start
    return torch.cat(maps), len(images) / max(forward_s, 1e-9), eval_s


@torch.no_grad()
def measure_simulation(
    simulator: AnomalySimulator, train_images: torch.Tensor, config: JobConfig, device: torch.device, batches: int = 3
) -> float:
    """Anomaly-simulation throughput (images/s) on the training device, timed apart from the
    training loop so that the loop needs no extra synchronisation. Uses its own generator, so it
    does not change the training run."""
    generator = torch.Generator(device=device).manual_seed(config.seed + 2)
    batch = to_float(train_images[: config.batch_size].to(device))
    simulator(batch, generator)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(batches):
        simulator(batch, generator)
    _sync(device)
    return batches * len(batch) / max(time.perf_counter() - start, 1e-9)


def split_memory(train_images: torch.Tensor, memory_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The official split: the FIRST `memory_size` normal training images in sorted file order fill
    the memory bank and are held out; training uses the rest (areylng/MemSeg dataset.py drops
    `image_names[:memory_number]` from training). The same images for every seed."""
    if len(train_images) <= memory_size:
        raise ValueError(
            f"the memory bank needs {memory_size} normal training images and training needs at least one more, "
            f"but only {len(train_images)} were found; lower memory_size or add images"
        )
    return train_images[:memory_size], train_images[memory_size:]


def resolve_device(name: str) -> torch.device:
    """`auto` is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available here; use --device cpu or auto")
    return device


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch on CUDA; the process's peak resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource  # here, not at the top: a Unix-only module (absent on Windows), needed only on the CPU

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def environment(device: torch.device, precision: ComputePrecision) -> dict[str, str]:
    """What produced the numbers, so a result row can be traced back (memseg.provenance: the revision,
    the git commit and whether the checkout was dirty, the package version), and the arithmetic the
    job computed in on its device (fp32, tf32 or bf16: its recipe's precision resolved there)."""
    return {
        "precision": precision.name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "timm": timm.__version__,
        "python": platform.python_version(),
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "node": platform.node(),
        **code_identity(),  # revision, git_sha, git_dirty, package_version
    }


def _data_root(config: JobConfig) -> str:
    if config.data_root is None:
        raise ValueError(
            f"job {config.job_id} has no data_root; pass --data-root (or let the harness generate its synthetic set)"
        )
    return config.data_root


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
