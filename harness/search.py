"""A recipe search (`harness tune`): the `search:` section of a sweep file read into a SearchSpec
(which recipe fields vary and how, the validation metric and its mode, the number of trials, the
scheduler, the categories and seeds it runs on), and the sweep file it ends with (the best recipe as
a `tuned` variant beside `official`, the sweep's profile as is).

No Ray here: the search itself runs in harness.tune. A search reads validation points only
(memseg.validation: simulated anomalies on held-out normal training images), never the test set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.strict_yaml import load_yaml
from harness.sweep import SweepSpec, check_overrides, parse_categories, parse_seeds, spec_from_dict, spec_to_dict
from memseg.names import check_names

DISTRIBUTIONS: tuple[str, ...] = ("loguniform", "uniform", "choice", "grid")
METRICS: tuple[str, ...] = ("image_auroc", "pixel_auroc", "loss")  # memseg.validation.ValidationPoint's
SCHEDULERS: tuple[str, ...] = ("asha", "none")
SEARCH_KEY = "search"
OFFICIAL, TUNED = "official", "tuned"  # the two variants of the final sweep
_KEYS = ("space", "metric", "mode", "trials", "scheduler", "grace_steps", "reduction_factor", "categories", "seeds")


@dataclass(frozen=True)
class Dimension:
    """One recipe field of the search space: `loguniform` / `uniform` between low and high, or
    `choice` (sampled) / `grid` (every value tried) among values."""

    field: str
    kind: str
    values: tuple[Any, ...]  # (low, high) for the two continuous kinds

    def describe(self) -> str:
        inner = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.values)
        return f"{self.field} {self.kind}({inner})"


@dataclass(frozen=True)
class SearchSpec:
    """What a search varies and how it judges a trial. `metric` is a validation series
    (image_auroc, pixel_auroc or loss), `mode` max or min. `trials` is Ray Tune's num_samples: with a
    grid dimension, each grid point is tried that many times. ASHA (`scheduler`) stops a trial whose
    validation metric trails its peers' at a rung, from `grace_steps` training steps on."""

    space: tuple[Dimension, ...]
    metric: str = "image_auroc"
    mode: str = "max"
    trials: int = 8
    scheduler: str = "asha"
    grace_steps: int | None = None  # None: a quarter of the steps, at least one validation interval
    reduction_factor: int = 2
    categories: tuple[str, ...] = ()  # () : the sweep's
    seeds: tuple[int, ...] = ()  # () : the sweep's first seed

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(d.field for d in self.space)

    def trial_count(self) -> int:
        """How many trials the search runs: `trials` per point of the grid."""
        return self.trials * math.prod(len(d.values) for d in self.space if d.kind == "grid")

    def grace(self, steps: int, val_every: int) -> int:
        return self.grace_steps if self.grace_steps is not None else max(val_every, steps // 4)


def parse_search(data: Any, spec: SweepSpec) -> SearchSpec:
    """The `search:` mapping of a sweep file as a SearchSpec; ValueError naming what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{SEARCH_KEY} must be a mapping with keys {', '.join(_KEYS)}, got {data!r}")
    unknown = sorted(str(k) for k in set(data) - set(_KEYS))
    if unknown:
        raise ValueError(f"unknown {SEARCH_KEY} keys {unknown}; valid: {', '.join(_KEYS)}")
    space = data.get("space")
    if not isinstance(space, Mapping) or not space:
        raise ValueError(
            f"{SEARCH_KEY}.space must map recipe fields to a distribution, e.g. lr: {{loguniform: [1e-4, 1e-2]}}; "
            f"distributions: {', '.join(DISTRIBUTIONS)}"
        )
    dims = tuple(_dimension(str(name), value) for name, value in space.items())
    metric = str(data.get("metric", "image_auroc"))
    check_names("search metrics", [metric], METRICS)
    mode = str(data.get("mode", "min" if metric == "loss" else "max"))
    check_names("search modes", [mode], ("max", "min"))
    scheduler = str(data.get("scheduler", "asha"))
    check_names("search schedulers", [scheduler], SCHEDULERS)
    trials = _positive_int("trials", data.get("trials", 8))
    grace = data.get("grace_steps")
    categories = parse_categories(data["categories"], spec.dataset) if "categories" in data else ()
    seeds = parse_seeds(data["seeds"] if not isinstance(data.get("seeds"), int) else [data["seeds"]]) if "seeds" in data else ()
    unknown_categories = sorted(set(categories) - set(spec.categories)) if spec.categories else []
    if unknown_categories:
        raise ValueError(
            f"{SEARCH_KEY}.categories {unknown_categories} are not among the sweep's categories {list(spec.categories)}"
        )
    return SearchSpec(
        space=dims,
        metric=metric,
        mode=mode,
        trials=trials,
        scheduler=scheduler,
        grace_steps=None if grace is None else _positive_int("grace_steps", grace),
        reduction_factor=_positive_int("reduction_factor", data.get("reduction_factor", 2), minimum=2),
        categories=categories,
        seeds=seeds,
    )


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{SEARCH_KEY}.{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _dimension(name: str, value: Any) -> Dimension:
    """One `field: {kind: [...]}` entry, its values checked as the field's (harness.sweep.check_overrides)."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError(
            f"{SEARCH_KEY}.space.{name} must be one of {{{': [...]}, {'.join(DISTRIBUTIONS)}: [...]}}, got {value!r}"
        )
    kind, values = next(iter(value.items()))
    check_names("search distributions", [str(kind)], DISTRIBUTIONS)
    if not isinstance(values, list) or not values:
        raise ValueError(f"{SEARCH_KEY}.space.{name}.{kind} must be a list, got {values!r}")
    if kind in ("loguniform", "uniform"):
        if len(values) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{SEARCH_KEY}.space.{name}.{kind} must be [low, high], got {values!r}")
        low, high = (float(v) for v in values)
        if not low < high or (kind == "loguniform" and low <= 0):
            raise ValueError(f"{SEARCH_KEY}.space.{name}.{kind} needs low < high (and low > 0 for loguniform), got {values!r}")
        values = [low, high]
    for v in values:
        try:
            check_overrides({name: v})
        except ValueError as err:
            raise ValueError(f"{SEARCH_KEY}.space.{name}: {err}") from None
    return Dimension(name, str(kind), tuple(values))


def load_search(path: str | Path) -> tuple[SweepSpec, SearchSpec]:
    """The sweep file `path` with its `search:` section: the sweep (everything but the search,
    harness.sweep) and the search, each checked; ValueError naming the file."""
    path = Path(path)
    data = load_yaml(path, "sweep file")
    if not isinstance(data, dict):
        raise ValueError(f"sweep file {path} must be a mapping of keys")
    if SEARCH_KEY not in data:
        raise ValueError(f"{path}: `harness tune` needs a `{SEARCH_KEY}:` section (docs/tuning.md gives its format)")
    raw = data.pop(SEARCH_KEY)
    try:
        spec = spec_from_dict({"name": path.stem, **data})
        return spec, parse_search(raw, spec)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def search_sweep(spec: SweepSpec, search: SearchSpec) -> SweepSpec:
    """The sweep each trial's jobs come from: the search's categories and seeds (else the
    sweep's, and its first seed), no variants."""
    return spec.replace(categories=search.categories or spec.categories, seeds=search.seeds or spec.seeds[:1], variants={})


def tuned_sweep(spec: SweepSpec, best: Mapping[str, Any], name: str) -> SweepSpec:
    """The final sweep: the sweep as given, every seed, with two variants: `official` (its profile
    and overrides as they are) and `tuned` (the same with the best recipe on top)."""
    return spec.replace(name=name, variants={OFFICIAL: {}, TUNED: dict(best)})


def dump_tuned(spec: SweepSpec, search: SearchSpec, best: Mapping[str, Any], best_value: float) -> str:
    """The final sweep file's text: a header saying where the `tuned` recipe came from, then the sweep."""
    header = (
        f"# Written by `harness tune`: the {TUNED} recipe is the search's best by validation {search.metric} "
        f"({best_value:.4f}, on simulated anomalies in held-out training images), over "
        f"{', '.join(d.describe() for d in search.space)}.\n"
        f"# {OFFICIAL} is the sweep's profile as is. Run it once on the test set, every seed, and compare:\n"
        f"#   harness compare --name {spec.name} --variants {OFFICIAL},{TUNED}\n"
    )
    return header + yaml.safe_dump(spec_to_dict(spec), sort_keys=False)


def plain(value: Any) -> Any:
    """A sampled value as YAML writes it (numpy scalars and the like as Python numbers)."""
    if hasattr(value, "item"):
        return value.item()
    return value
