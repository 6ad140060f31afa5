"""The job contract: what one MemSeg train + eval run is given (JobConfig; what it returns is in
memseg.result), how its fields enter the job id (the RECIPE / RUNTIME marks, `job_id`), the
validator of each of its names (step mode, optimizer, schedule, eval resolution; ablations are
memseg.ablations', profiles memseg.profiles', categories and data set kinds memseg.data.registry's),
and the per-category settings a job runs with (`resolve`).

Everything the harness and the CLI know about a job goes through these frozen dataclasses, so a
config that is equal is the same experiment on any machine (see `job_id`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memseg.ablations import Ablation, get_ablation
from memseg.categories import CATEGORY_SETTINGS, CategorySettings, category_settings, uses_table
from memseg.data.registry import check_category, check_dataset_kind
from memseg.names import MAX_NAME_BYTES, check_names, check_path_name, name_bytes
from memseg.precision import OFFICIAL_PRECISION, check_precision
from memseg.values import check_field_values

# How a job runs its training steps (memseg.train_step): auto = a CUDA graph on CUDA when the
# capture works, else eager. A runtime choice: it is not part of the job id.
STEP_MODES: tuple[str, ...] = ("auto", "eager", "graph", "compile")


def check_step_mode(mode: str) -> str:
    """`mode` if it is one of STEP_MODES, else an UnknownNameError listing them."""
    return check_names("step modes", [mode], STEP_MODES)[0]


# The optimizer and the learning-rate schedule of a job (memseg.train_step.make_optimizer,
# memseg.train_step.lr_factor). sgd + cosine_restart is the official recipe (areylng/MemSeg run_training.py):
# CosineAnnealingWarmRestarts(T_0 = steps) stepped once per step, one cosine from lr to 0.
# adamw + warmup_cosine is TooTouch/MemSeg's recipe: linear warm-up, then a cosine to 0.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("cosine_restart", "warmup_cosine")


def check_optimizer(name: str) -> str:
    """`name` if it is one of OPTIMIZERS, else an UnknownNameError listing them."""
    return check_names("optimizers", [name], OPTIMIZERS)[0]


def check_schedule(name: str) -> str:
    """`name` if it is one of SCHEDULES, else an UnknownNameError listing them."""
    return check_names("schedules", [name], SCHEDULES)[0]


# model: pixel metrics on the model's anomaly maps (image_size px) against masks resized to them;
# native: each map upsampled (bilinear) to its mask's original size, masks untouched, as the
# official MVTec AD evaluation does (memseg.protocol).
EVAL_RESOLUTIONS: tuple[str, ...] = ("model", "native")


def check_eval_resolution(value: str) -> str:
    if value not in EVAL_RESOLUTIONS:
        raise ValueError(f"unknown eval_resolution {value!r}; valid: {', '.join(EVAL_RESOLUTIONS)}")
    return value


# Whether a JobConfig field is part of the job id, marked on each field: RECIPE fields change the
# result, RUNTIME fields only say where or how a job runs. Every field must carry one of the two
# (checked at import), so a new field cannot silently change (or fail to change) every job id.
ID_KEY = "job_id"
OMIT_DEFAULT_KEY = "omit_at_default"
RECIPE: dict[str, bool] = {ID_KEY: True}
RUNTIME: dict[str, bool] = {ID_KEY: False}
BEFORE_KEY = "value_before_it_existed"
# A recipe field added after results exist, whose default is what every earlier job ran with (None:
# "the built-in table's value"): it is left out of the id while at its default, so the ids of every
# config written before it stay the same and those results resume.
OPTIONAL_RECIPE: dict[str, bool] = {ID_KEY: True, OMIT_DEFAULT_KEY: True}


def added_recipe(value_before: Any) -> dict[str, Any]:
    """The mark of a recipe field added after results exist whose default is NOT what earlier jobs
    ran (revision 3's optimizer, schedule and focal-loss fields): `value_before` is what every job
    written before the field existed ran with. The field is left out of the id while it holds that
    value, so an earlier experiment spelled out today keeps its id (its stored result then shows as
    done at its own revision, docs/results.md), and a stored config without the field
    reads as that value."""
    return {ID_KEY: True, OMIT_DEFAULT_KEY: True, BEFORE_KEY: value_before}


RENAMED_KEY = "renamed_from"


def renamed_recipe(old_name: str, old_values: Mapping[Any, Any], value_before: Any) -> dict[str, Any]:
    """The mark of a recipe field that replaced field `old_name` of earlier code. `old_values` maps
    each value the old field could hold to the new value that means the same experiment;
    `value_before` is what a config that has neither field ran with. A stored config spelled with
    the old name reads as the new field (`from_dict`, `experiment_fields`), and the id spells those
    values the old way, so every stored id stays; the new field's other values are new experiments."""
    return {ID_KEY: True, BEFORE_KEY: value_before, RENAMED_KEY: (old_name, dict(old_values))}


def _renamed_fields(config_type: type[JobConfig]) -> list[tuple[str, str, dict[Any, Any]]]:
    """(new name, old name, old value -> new value) of every field marked `renamed_recipe`."""
    return [(f.name, *f.metadata[RENAMED_KEY]) for f in dataclasses.fields(config_type) if RENAMED_KEY in f.metadata]


def read_old_names(fields: Mapping[str, Any], config_type: type[JobConfig]) -> dict[str, Any]:
    """`fields` with each field of an old name (a stored config, an old sweep file) under its new
    name and value. ValueError when both names are given, or the old value has no meaning today."""
    out = dict(fields)
    for new, old, values in _renamed_fields(config_type):
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"{old!r} is the old name of {new!r}: give one of them, not both")
        value = out.pop(old)
        if value not in values:
            raise ValueError(f"{old} (now {new}) cannot be {value!r}; valid: {', '.join(map(repr, values))}")
        out[new] = values[value]
    return out


def _value_before(f: dataclasses.Field[Any]) -> Any:
    """What a job written before field `f` existed ran with: its BEFORE_KEY mark, else its default."""
    return f.metadata.get(BEFORE_KEY, f.default)


VAL_IMAGES = 8  # the default number of training images a validation curve holds out


@dataclass(frozen=True)
class JobConfig:
    """One MemSeg train + eval run. Defaults reproduce the official recipe, the paper profile
    (areylng/MemSeg run_training.py: 256 px, 8 images per step of which half are simulated
    anomalies, 2701 steps, SGD lr 0.04 momentum 0.9 weight decay 3e-5, one cosine to 0; the
    official focal loss). docs/model.md, "The model, the profiles and the ablations", gives each
    number's source."""

    category: str = field(metadata=RECIPE)
    data_root: str | None = field(default=None, metadata=RUNTIME)  # None: the harness fills in its generated data
    dataset: str = field(
        default="mvtec", metadata=RECIPE
    )  # a memseg.data.registry kind: mvtec | folder | synthetic | visa | mvtec_ad2 | mpdd | btad
    seed: int = field(default=0, metadata=RECIPE)
    ablation: str = field(default="full", metadata=RECIPE)
    image_size: int = field(default=256, metadata=RECIPE)
    steps: int = field(default=2701, metadata=RECIPE)
    batch_size: int = field(default=8, metadata=RECIPE)
    # The optimizer and schedule (OPTIMIZERS, SCHEDULES above). Added in revision 3; every earlier job
    # ran AdamW + warmup_cosine (`added_recipe`: at those values they stay out of the id).
    optimizer: str = field(default="sgd", metadata=added_recipe("adamw"))  # sgd | adamw
    lr: float = field(default=0.04, metadata=RECIPE)
    momentum: float = field(default=0.9, metadata=OPTIONAL_RECIPE)  # SGD's momentum (unused by AdamW)
    weight_decay: float = field(default=3e-5, metadata=RECIPE)
    schedule: str = field(default="cosine_restart", metadata=added_recipe("warmup_cosine"))  # cosine_restart | warmup_cosine
    warmup_fraction: float = field(default=0.1, metadata=RECIPE)  # warmup_cosine only: linear warm-up share of the steps
    # Per-category settings (memseg/categories.py); None = the category table's value. Added after
    # the first results were written, so they enter the job id only when set (OPTIONAL_RECIPE).
    memory_size: int | None = field(default=None, metadata=OPTIONAL_RECIPE)  # first N sorted normal train images fill the bank
    di_scale: float | None = field(default=None, metadata=OPTIONAL_RECIPE)  # DI multiplier (official m_scale)
    feature_scale: float | None = field(default=None, metadata=OPTIONAL_RECIPE)  # features beside DI (official o_scale)
    foreground_mask: bool | None = field(default=None, metadata=OPTIONAL_RECIPE)  # restrict simulated anomalies to the object
    anomaly_ratio: float = field(default=0.5, metadata=RECIPE)  # fraction of each batch with a simulated anomaly
    l1_weight: float = field(default=0.6, metadata=RECIPE)
    focal_weight: float = field(default=0.4, metadata=RECIPE)
    focal_gamma: float = field(default=4.0, metadata=RECIPE)
    # The official focal loss (memseg.loss): class weights by target (normal, anomalous) and the
    # one-hot clamp / pt offset. focal_smooth 0 with alphas 1 and 1: revision 2's exact focal loss.
    focal_alpha_normal: float = field(default=1.0, metadata=OPTIONAL_RECIPE)
    focal_alpha_anomaly: float = field(default=1.2, metadata=added_recipe(1.0))
    focal_smooth: float = field(default=1e-5, metadata=added_recipe(0.0))
    top_k: int = field(default=100, metadata=RECIPE)  # image score = mean of the top-k pixel probabilities at 256 px
    # model | native: pixel metrics at image_size, or at each mask's own size (memseg.protocol)
    eval_resolution: str = field(default="model", metadata=OPTIONAL_RECIPE)
    backbone_weights: str = field(default="imagenet", metadata=RECIPE)  # imagenet | none | path to a ResNet18 state dict
    texture_dir: str | None = field(default=None, metadata=RECIPE)  # DTD-style folder of textures; None = procedural
    device: str = field(default="auto", metadata=RUNTIME)  # auto | cpu | cuda | cuda:N
    # fp32 | tf32 | bf16 | auto (memseg.precision): what the forward passes compute in. fp32 is the
    # official code's float32. It replaced `amp` (true: bf16 on CUDA, float32 on the CPU, now auto;
    # false: now fp32), whose spelling the ids of those two values keep.
    precision: str = field(
        default=OFFICIAL_PRECISION, metadata=renamed_recipe("amp", {True: "auto", False: "fp32"}, value_before="auto")
    )
    compile: bool = field(default=False, metadata=RECIPE)  # torch.compile the model (GPU speed-up, slow first step)
    eval_batch_size: int = field(default=32, metadata=RUNTIME)
    log_every: int = field(default=25, metadata=RUNTIME)  # steps between loss reports (the only host syncs in the loop)
    out_dir: str | None = field(default=None, metadata=RUNTIME)  # where weights and per-image scores go; None = not saved
    # auto | eager | graph | compile (memseg.train_step); how, not what: results agree in distribution.
    # eager by default until benchmarks/graph_check.py has passed on a GPU: the captured path has
    # never run on one, and a capture that replays stale randomness would fail silently.
    step_mode: str = field(default="eager", metadata=RUNTIME)
    # The sweep's recipe variant this job belongs to (harness.sweep, `variants:`): a name, part of the
    # id, so two variants with the same recipe stay two jobs. "" (no variants) keeps every earlier id.
    variant: str = field(default="", metadata=OPTIONAL_RECIPE)
    # A validation curve (memseg.validation): every `val_every` steps (0: never) score
    # `val_images` normal training images, held out of training, with simulated anomalies. Holding
    # them out changes what the job trains on, so both are part of the id (left out at their defaults).
    val_every: int = field(default=0, metadata=OPTIONAL_RECIPE)
    val_images: int = field(default=VAL_IMAGES, metadata=OPTIONAL_RECIPE)
    # Thresholds fixed without the test set (memseg.calibration): the last `calibrate_images` normal
    # training images, held out of training, are scored by the trained model (0: none, and a data set
    # with a validation split, MVTec AD 2, calibrates on it). Holding them out changes what the job
    # trains on, so it is part of the id (left out at 0, what every earlier job did).
    calibrate_images: int = field(default=0, metadata=OPTIONAL_RECIPE)
    # Keep the test set's anomaly maps (at the model's resolution, with each image's original size)
    # in the result, for the files the official tools read (harness export); and, on MVTec AD 2,
    # also predict its private test sets, which have no ground truth: maps only, no metric. Where the
    # maps go, not what the job computes: not in the id.
    save_maps: bool = field(default=False, metadata=RUNTIME)
    predict_private: bool = field(default=False, metadata=RUNTIME)

    def __post_init__(self) -> None:
        check_field_values(self)  # first: every check below compares values of the declared types
        check_dataset_kind(self.dataset)
        check_category(self.category, self.dataset)  # per data set; a folder data set names its own
        get_ablation(self.ablation)
        if self.variant:
            check_path_name("variant name", self.variant)  # it becomes part of job ids and file names
        check_job_id_length(self)
        if self.image_size < 32 or self.image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32 and >= 32, got {self.image_size}")
        for name in ("steps", "batch_size", "top_k", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.memory_size is not None and self.memory_size < 1:
            raise ValueError(f"memory_size must be >= 1 (or None: the category table), got {self.memory_size}")
        for name in ("di_scale", "feature_scale"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 (or None: the category table), got {value}")
        if not 0.0 <= self.anomaly_ratio <= 1.0:
            raise ValueError(f"anomaly_ratio must be in [0, 1], got {self.anomaly_ratio}")
        check_eval_resolution(self.eval_resolution)
        check_precision(self.precision)
        check_step_mode(self.step_mode)
        check_optimizer(self.optimizer)
        check_schedule(self.schedule)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.focal_smooth < 0.5:
            raise ValueError(f"focal_smooth must be in [0, 0.5) (official 1e-5; 0: exact log_softmax), got {self.focal_smooth}")
        if self.predict_private and self.dataset != "mvtec_ad2":
            raise ValueError(f"predict_private is for MVTec AD 2's private test sets; dataset {self.dataset} has none")
        if self.calibrate_images < 0:
            raise ValueError(f"calibrate_images must be >= 0 (0: none held out), got {self.calibrate_images}")
        if self.val_every < 0:
            raise ValueError(f"val_every must be >= 0 (0: no validation curve), got {self.val_every}")
        if self.val_images < 2:
            raise ValueError(f"val_images must be >= 2 (one normal, one with an anomaly), got {self.val_images}")
        if self.val_images != VAL_IMAGES and not self.val_every:
            # It would hold images out of training and change the job id, with no curve to show for it.
            raise ValueError(
                f"val_images ({self.val_images}) only says how many images the validation curve holds out: "
                "give val_every N (--val-every N) with it, or drop it"
            )
        for name in ("focal_alpha_normal", "focal_alpha_anomaly"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def replace(self, **changes: Any) -> JobConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobConfig:
        """A config from plain data; a field under its old name (`renamed_recipe`) is read as today's."""
        data = read_old_names(data, cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown JobConfig keys {unknown}; valid: {', '.join(sorted(known))}")
        return cls(**data)

    @property
    def ablation_flags(self) -> Ablation:
        return get_ablation(self.ablation)

    @property
    def job_id(self) -> str:
        return job_id(self)


def id_fields(config_type: type[JobConfig] = JobConfig) -> tuple[str, ...]:
    """The names of the fields marked RECIPE: those the job id covers. Raises TypeError naming any
    field that is marked neither RECIPE nor RUNTIME."""
    unmarked = [f.name for f in dataclasses.fields(config_type) if ID_KEY not in f.metadata]
    if unmarked:
        raise TypeError(
            f"JobConfig fields {unmarked} are not marked: give each `metadata=RECIPE` (it changes the result, "
            "so it is part of the job id) or `metadata=RUNTIME` (where or how the job runs; not in the id)"
        )
    return tuple(f.name for f in dataclasses.fields(config_type) if f.metadata[ID_KEY])


def experiment_fields(fields: Mapping[str, Any], config_type: type[JobConfig] = JobConfig) -> dict[str, Any]:
    """The fields of a config that make up the experiment: every field not marked RUNTIME, paths
    reduced to what they mean (a texture folder or a weights file by its name), an unset
    memory_size as the category table's value. `fields` is a config as plain data (a stored
    config_json); a field it lacks (a row written before that field existed) takes what such a job
    ran with: its value before it existed (`added_recipe`), else its default."""
    config_fields = dataclasses.fields(config_type)
    defaults = {f.name: _value_before(f) for f in config_fields if f.default is not dataclasses.MISSING}
    runtime = {f.name for f in config_fields} - set(id_fields(config_type))
    fields = read_old_names(fields, config_type)
    out = {name: value for name, value in {**defaults, **fields}.items() if name not in runtime}
    # memory_size was a plain int before the category table existed: an unset one is the table's
    # value, so a config that means the same bank is the same experiment (and keeps its job id).
    if out.get("memory_size") is None and "category" in out:
        out["memory_size"] = category_settings(out["category"], out.get("dataset", "mvtec")).memory_size
    if out.get("texture_dir") is not None:
        out["texture_dir"] = Path(out["texture_dir"]).name
    if out.get("backbone_weights") not in (None, "imagenet", "none"):
        out["backbone_weights"] = "file:" + Path(out["backbone_weights"]).name
    return out


def job_id(config: JobConfig) -> str:
    """A short stable hash of the experiment's fields (`experiment_fields`: the RECIPE fields),
    OPTIONAL_RECIPE and `added_recipe` ones left out while at the value every job ran with before
    they existed, so the same experiment has the same id across revisions and
    on a laptop and on a cluster node with a different mount point. Readable prefix:
    `<category>-<ablation>-s<seed>`, or `<category>-<ablation>-<variant>-s<seed>` in a variant."""
    fields = experiment_fields(dataclasses.asdict(config), type(config))
    for f in dataclasses.fields(config):
        if f.metadata.get(OMIT_DEFAULT_KEY) and f.name in fields and fields[f.name] == _value_before(f):
            fields.pop(f.name)
    for new, old, values in _renamed_fields(type(config)):  # the old spelling where the old field had one
        spelled = {value: old_value for old_value, value in values.items()}
        if fields.get(new) in spelled:
            fields[old] = spelled[fields.pop(new)]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f"{_readable_id(config)}-" + hashlib.sha256(canonical.encode()).hexdigest()[:ID_HASH_CHARS]


ID_HASH_CHARS = 10


def _readable_id(config: JobConfig) -> str:
    """The readable prefix of a job id: `<category>-<ablation>[-<variant>]-s<seed>`."""
    return "-".join(part for part in (config.category, config.ablation, config.variant, f"s{config.seed}") if part)


def check_job_id_length(config: JobConfig) -> None:
    """ValueError when `config`'s job id would be too long a file name (memseg.names: its files add
    to it); it holds the category and the variant, each of which may be long on its own."""
    size = name_bytes(_readable_id(config)) + 1 + ID_HASH_CHARS
    if size > MAX_NAME_BYTES:
        raise ValueError(
            f"the job id of category {config.category[:40]!r}, variant {config.variant[:40]!r} would be {size} bytes "
            f"long; it names files, so it may be at most {MAX_NAME_BYTES}: shorten the category or the variant name "
            f"({name_bytes(config.category)} and {name_bytes(config.variant)} bytes)"
        )


def foreground_rule(config: JobConfig) -> str:
    """Which rule decided `resolve(config).foreground_mask`, for the result row: "ablation" (the
    no_foreground_mask ablation removes it), "override" (JobConfig.foreground_mask), "category table"
    or "dataset default"."""
    if not config.ablation_flags.foreground_mask:
        return "ablation"
    if config.foreground_mask is not None:
        return "override"
    return "category table" if uses_table(config.dataset) and config.category in CATEGORY_SETTINGS else "dataset default"


def train_images_needed(config: JobConfig) -> tuple[int, str]:
    """How many normal training images the job needs, and why: the memory bank's first images, the
    validation curve's last ones (with val_every) and at least one left to train on (memseg.job)."""
    memory = resolve(config).memory_size
    held_out = config.val_images if config.val_every else 0
    why = f"{memory} for the memory bank" + (f", {held_out} held out for the validation curve" if held_out else "")
    if config.calibrate_images:
        why += f", {config.calibrate_images} held out to calibrate the thresholds"
    return memory + held_out + config.calibrate_images + 1, f"{why} and at least 1 to train on"


def resolve(config: JobConfig) -> CategorySettings:
    """The settings a job runs with: each JobConfig override that is not None, else the table row
    of its data set and category (see category_settings). The `unscaled` ablation sets both scales
    to 1 and the `no_foreground_mask` ablation turns the foreground mask off, whatever the table or
    the overrides say (an ablation names what it removes)."""
    table = category_settings(config.category, config.dataset)
    ablation = config.ablation_flags
    memory_size = table.memory_size if config.memory_size is None else config.memory_size
    di_scale = table.di_scale if config.di_scale is None else config.di_scale
    feature_scale = table.feature_scale if config.feature_scale is None else config.feature_scale
    foreground = table.foreground_mask if config.foreground_mask is None else config.foreground_mask
    if not ablation.scaled:
        di_scale = feature_scale = 1.0
    return CategorySettings(
        memory_size=memory_size,
        di_scale=float(di_scale),
        feature_scale=float(feature_scale),
        foreground_mask=foreground and ablation.foreground_mask,
    )


id_fields()  # every JobConfig field is marked: fails at import otherwise
