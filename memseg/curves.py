"""Training curves: what a job recorded at each log interval (loss and its parts, learning rate,
step time) and, with --val-every, a validation curve on simulated anomalies. A leaf: it imports
nothing from memseg, so the result types, the training loop and the harness can all use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

# The training series, recorded at every log interval.
TRAIN_SERIES: tuple[str, ...] = ("loss", "loss_l1", "loss_focal", "lr", "step_time_s")
# The validation series, recorded every --val-every steps on simulated anomalies of held-out
# TRAINING images: never the test set, never a test score, and never used to pick a checkpoint.
VALIDATION_SERIES: tuple[str, ...] = ("image_auroc", "pixel_auroc", "loss")

TRAIN_GROUP, VALIDATION_GROUP = "train", "validation"
VALIDATION_LABEL = "validation on simulated anomalies"
SERIES_LABELS: Mapping[str, str] = {
    "train/loss": "training loss",
    "train/loss_l1": "training loss: L1 part",
    "train/loss_focal": "training loss: focal part",
    "train/lr": "learning rate",
    "train/step_time_s": "step time (s)",
    "validation/image_auroc": f"image AUROC, {VALIDATION_LABEL}",
    "validation/pixel_auroc": f"pixel AUROC, {VALIDATION_LABEL}",
    "validation/loss": f"loss, {VALIDATION_LABEL}",
}


@dataclass(frozen=True)
class TrainingCurves:
    """What a job recorded while it trained. Each series is aligned with its steps."""

    steps: tuple[int, ...]  # training steps at log intervals
    train: Mapping[str, tuple[float, ...]]  # keys: TRAIN_SERIES ("loss", "loss_l1", "loss_focal", "lr", "step_time_s")
    val_steps: tuple[int, ...] = ()  # steps of the validation curve (empty without --val-every)
    # VALIDATION_SERIES ("image_auroc", "pixel_auroc", "loss"): on simulated anomalies of held-out
    # TRAINING images, never the test set
    validation: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for group, steps, series in ((TRAIN_GROUP, self.steps, self.train), (VALIDATION_GROUP, self.val_steps, self.validation)):
            for name, values in series.items():
                if len(values) != len(steps):
                    raise ValueError(
                        f"curve {group}/{name} has {len(values)} values for {len(steps)} steps; each value needs its step"
                    )

    def series(self) -> dict[str, tuple[tuple[int, ...], tuple[float, ...]]]:
        """Every series by its full name ("train/loss", "validation/image_auroc"): (steps, values)."""
        out = {f"{TRAIN_GROUP}/{k}": (self.steps, tuple(v)) for k, v in self.train.items()}
        out.update({f"{VALIDATION_GROUP}/{k}": (self.val_steps, tuple(v)) for k, v in self.validation.items()})
        return out

    @property
    def has_validation(self) -> bool:
        return bool(self.val_steps) and any(self.validation.values())


def label_of(name: str) -> str:
    """How every view names a series ("validation/image_auroc" -> "image AUROC, validation on
    simulated anomalies"); an unknown series keeps its name, with the validation label when it is one."""
    if name in SERIES_LABELS:
        return SERIES_LABELS[name]
    group, _, short = name.partition("/")
    return f"{short}, {VALIDATION_LABEL}" if group == VALIDATION_GROUP else short or name


def finite(values: tuple[float, ...]) -> list[float]:
    """The values that are numbers (a diverged step may record NaN or inf)."""
    return [v for v in values if math.isfinite(v)]


@dataclass
class CurveRecorder:
    """What the training loop appends to at each log interval (host floats it already has, so
    recording costs no host sync), then `freeze`s into TrainingCurves. `to_json` / `from_json`
    carry the points through a checkpoint, so a resumed job keeps the curve of its first part."""

    steps: list[int] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in TRAIN_SERIES})
    val_steps: list[int] = field(default_factory=list)
    validation: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in VALIDATION_SERIES})

    def add_train(self, step: int, values: Mapping[str, float]) -> None:
        """One training point; `values` has every name of TRAIN_SERIES."""
        self.steps.append(step)
        for name in TRAIN_SERIES:
            self.train[name].append(float(values[name]))

    def add_validation(self, step: int, values: Mapping[str, float]) -> None:
        """One validation point; `values` has every name of VALIDATION_SERIES."""
        self.val_steps.append(step)
        for name in VALIDATION_SERIES:
            self.validation[name].append(float(values[name]))

    def freeze(self) -> TrainingCurves:
        return TrainingCurves(
            steps=tuple(self.steps),
            train={k: tuple(v) for k, v in self.train.items()},
            val_steps=tuple(self.val_steps),
            validation={k: tuple(v) for k, v in self.validation.items()} if self.val_steps else {},
        )

    def to_json(self) -> dict[str, object]:
        return {"steps": self.steps, "train": self.train, "val_steps": self.val_steps, "validation": self.validation}

    @classmethod
    def from_json(cls, saved: Mapping[str, object] | None) -> CurveRecorder:
        """The recorder a checkpoint saved; an empty one for a checkpoint without curves."""
        if not saved:
            return cls()
        steps, train, val_steps, validation = (saved[k] for k in ("steps", "train", "val_steps", "validation"))
        assert (
            isinstance(steps, list) and isinstance(train, dict) and isinstance(val_steps, list) and isinstance(validation, dict)
        )
        return cls(
            list(steps), {k: list(v) for k, v in train.items()}, list(val_steps), {k: list(v) for k, v in validation.items()}
        )
