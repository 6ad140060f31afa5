"""Sweep specs: what to run (categories x seeds x ablations x recipe variants under one profile),
read from YAML or flags, and expanded into JobConfigs in a stable order with stable ids.

A sweep's name is the folder its results live in, so the same flags always resume the same folder.

A variant (`variants:` in YAML) is a named recipe: an optional `profile` and JobConfig overrides.
Each job's recipe, later entries winning: the variant's profile (else the sweep's), then the
sweep's overrides (so `--steps 100` shortens every variant), then the variant's own overrides
(what makes the variant what it is). Without variants every job is as before, with variant "".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.strict_yaml import load_yaml
from memseg.ablations import ABLATIONS, check_ablations
from memseg.config import JobConfig, train_images_needed
from memseg.data.registry import check_categories, check_dataset_kind, get_dataset
from memseg.names import check_names, check_path_name
from memseg.profiles import PROFILES, profile
from memseg.values import check_field_values, check_value, field_annotations, shown

# JobConfig fields a sweep sets itself; `overrides` may not touch them.
_AXES = ("category", "seed", "ablation", "dataset", "data_root", "variant")
# The key of a variant that names its base profile; every other key is a JobConfig override.
VARIANT_PROFILE = "profile"
_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(JobConfig))
_JOB_TYPES = field_annotations(JobConfig)


AUTO = "auto"  # jobs_per_gpu: as many as the card holds (harness.packing)


def parse_jobs_per_gpu(value: object) -> int | str:
    """`auto` or an integer >= 1 (a flag's text or a sweep file's value); ValueError otherwise."""
    if isinstance(value, str) and value.strip() == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"jobs_per_gpu must be 'auto' or an integer >= 1, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"jobs_per_gpu must be 'auto' or an integer >= 1, got {value!r}") from None
    if number < 1:
        raise ValueError(f"jobs_per_gpu must be 'auto' or an integer >= 1, got {value!r}")
    return number


@dataclass(frozen=True)
class SweepSpec:
    """One sweep. `profile` None means "let the CLI pick from the cluster" (paper with GPUs, smoke
    without); `name` None means "derive it from profile, dataset and overrides" (`sweep_name`).
    `gpus_per_job` / `cpus_per_job` None mean "size from the cluster" (see harness.driver);
    `jobs_per_gpu` (an integer or "auto", harness.packing) shares each GPU between that many jobs
    and replaces `gpus_per_job`. `variants` (name -> overrides, see the module's docstring) is an
    axis like the ablations; none means one unnamed recipe."""

    name: str | None = None
    categories: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    ablations: tuple[str, ...] = ("full",)
    profile: str | None = None
    dataset: str = "synthetic"
    data_root: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    gpus_per_job: float | None = None
    cpus_per_job: float | None = None
    max_retries: int = 2
    jobs_per_gpu: int | str | None = None
    description: str = ""
    # name -> {"profile": base profile (optional), JobConfig field: value, ...}; empty: no variant axis
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Validate at construction so a bad spec never reaches Ray; first each value's type, which
        # every check below takes for granted.
        check_field_values(self)
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "ablations", tuple(self.ablations))
        object.__setattr__(self, "overrides", dict(self.overrides))
        if self.name is not None:  # the results folder: a name under --results, never a path out of it
            check_path_name("sweep name", self.name)
        if not self.ablations:
            raise ValueError(f"a sweep needs at least one ablation; valid: {', '.join(ABLATIONS)}")
        check_ablations(self.ablations, also_valid=("all",))
        if self.profile is not None:
            profile(self.profile)
        check_dataset_kind(self.dataset)
        check_categories(self.categories, also_valid=("all",), dataset=self.dataset)  # the dataset's own names
        check_overrides(self.overrides)
        object.__setattr__(self, "variants", check_variants(self.variants))
        if not self.seeds:
            raise ValueError("a sweep needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {list(self.seeds)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("gpus_per_job", "cpus_per_job"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.jobs_per_gpu is not None:
            object.__setattr__(self, "jobs_per_gpu", parse_jobs_per_gpu(self.jobs_per_gpu))
            if self.gpus_per_job is not None:
                raise ValueError(
                    f"give jobs_per_gpu ({self.jobs_per_gpu}) or gpus_per_job ({self.gpus_per_job:g}), not both: "
                    "K jobs per GPU is 1/K GPU per job"
                )

    def replace(self, **changes: Any) -> SweepSpec:
        return dataclasses.replace(self, **changes)


_YAML_KEYS = tuple(f.name for f in dataclasses.fields(SweepSpec))


def parse_categories(value: str | Iterable[str], dataset: str = "mvtec") -> tuple[str, ...]:
    """ "all" (or ["all"]) is every category of `dataset` (MVTec AD's 15 for mvtec and synthetic);
    otherwise the names as given, comma separated in a string."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    if names == ["all"]:
        known = get_dataset(dataset).categories
        if known is None:
            raise ValueError(f"{dataset} data names its own categories: list them (--categories a,b), 'all' is not defined")
        return known
    if "all" in names:
        raise ValueError(f"'all' cannot be mixed with other categories: {names}")
    return tuple(names)


def parse_seeds(value: str | Iterable[int]) -> tuple[int, ...]:
    """Seeds as "0,1,2" or a list of ints."""
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        seeds = tuple(int(str(v).strip()) for v in items if str(v).strip())
    except ValueError:
        raise ValueError(f"seeds must be integers separated by commas, got {value!r}") from None
    if any(seed < 0 for seed in seeds):
        raise ValueError(f"seeds must be integers >= 0, got {value!r}")
    return seeds


def parse_ablations(value: str | Iterable[str]) -> tuple[str, ...]:
    """Ablation names as "full,no_memory" or a list; "all" is every ablation."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    return tuple(ABLATIONS) if names == ["all"] else tuple(names)


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Each key a JobConfig field that is not a sweep axis, each value of that field's type (a
    number finite): the same check the flags and JobConfig itself make (memseg.values)."""
    axes = sorted(set(overrides) & set(_AXES))
    if axes:
        raise ValueError(
            f"overrides may not set {axes}: they are sweep keys (categories, seeds, ablations, dataset, data_root, variants)"
        )
    unknown = sorted(shown(key) if not isinstance(key, str) else key for key in set(overrides) - set(_JOB_FIELDS))
    if unknown:
        valid = sorted(set(_JOB_FIELDS) - set(_AXES))
        raise ValueError(f"unknown overrides {shown(unknown)}; valid JobConfig fields: {', '.join(valid)}")
    for key, value in overrides.items():
        check_value(key, _JOB_TYPES[key], value)


def check_variants(variants: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """`variants` as plain dicts (an empty value, `name: {}` in YAML, is the sweep's own recipe),
    each name checked, each `profile` a known profile, every other key a JobConfig override."""
    if variants is None:
        return {}
    if not isinstance(variants, Mapping):
        raise ValueError(f"variants must be a mapping of name -> {{profile: NAME, field: value, ...}}, got {variants!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, recipe in variants.items():
        check_path_name("variant name", name)  # it becomes part of job ids and file names
        recipe = {} if recipe is None else recipe
        if not isinstance(recipe, Mapping):
            raise ValueError(f"variant {name!r} must be a mapping ({{profile: NAME, field: value, ...}}), got {shown(recipe)}")
        try:
            if VARIANT_PROFILE in recipe:
                check_value(VARIANT_PROFILE, "str", recipe[VARIANT_PROFILE])
                profile(recipe[VARIANT_PROFILE])
            check_overrides({k: v for k, v in recipe.items() if k != VARIANT_PROFILE})
        except ValueError as err:
            raise ValueError(f"variant {name!r} ({VARIANT_PROFILE}: NAME and JobConfig overrides): {err}") from None
        out[name] = dict(recipe)
    return out


def parse_variants(value: str | Iterable[str]) -> tuple[str, ...]:
    """Variant names as "official,tootouch" or a list."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    return tuple(n for n in names if n)


def select_variants(spec: SweepSpec, names: Iterable[str]) -> SweepSpec:
    """The sweep with only the variants named (in that order), or a ValueError listing the valid names."""
    names = tuple(names)
    if not spec.variants:
        raise ValueError(f"--variants {','.join(names)}: the sweep defines no variants (a `variants:` section in its file)")
    if not names:
        raise ValueError(f"name at least one variant; valid: {', '.join(spec.variants)}")
    if len(set(names)) != len(names):
        raise ValueError(f"variants repeat: {list(names)}")
    check_names("variants", names, spec.variants)
    return spec.replace(variants={n: spec.variants[n] for n in names})


def load_sweep(path: str | Path) -> SweepSpec:
    """The sweep in YAML file `path` (harness.strict_yaml: a repeated key, an alias expanding past
    any sweep's size or a file that is not UTF-8 is refused, naming the file). Its name defaults
    to the file's stem."""
    path = Path(path)
    data = load_yaml(path, "sweep file")
    if not isinstance(data, dict):
        raise ValueError(f"sweep file {path} must be a mapping of keys ({', '.join(_YAML_KEYS)})")
    try:
        return spec_from_dict({"name": path.stem, **data})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def spec_from_dict(data: Mapping[str, Any]) -> SweepSpec:
    """A SweepSpec from plain data (YAML), naming any unknown key with the valid ones."""
    unknown = sorted(shown(key) if not isinstance(key, str) else key for key in set(data) - set(_YAML_KEYS))
    if unknown:
        raise ValueError(f"unknown sweep keys {shown(unknown)}; valid: {', '.join(_YAML_KEYS)}")
    values = dict(data)
    if isinstance(values.get("seeds"), int) and not isinstance(values.get("seeds"), bool):
        values["seeds"] = [values["seeds"]]  # `seeds: 0`, one seed
    for key in ("categories", "seeds", "ablations"):  # a comma-separated text or a list of names
        value = values.get(key)
        if key in values and not (isinstance(value, str | list) and all(isinstance(v, str | int) for v in value)):
            raise ValueError(f"{key} must be a list or comma-separated text, got {shown(value)} ({type(value).__name__})")
    if "categories" in values:
        values["categories"] = parse_categories(values["categories"], values.get("dataset", SweepSpec.dataset))
    if "seeds" in values:
        values["seeds"] = parse_seeds(values["seeds"])
    if "ablations" in values:
        values["ablations"] = parse_ablations(values["ablations"])
    if values.get("overrides") is None:
        values["overrides"] = {}
    if not isinstance(values["overrides"], dict):
        raise ValueError(f"overrides must be a mapping of JobConfig fields, got {values['overrides']!r}")
    if values.get("description") is None:
        values["description"] = ""
    return SweepSpec(**values)


def spec_to_dict(spec: SweepSpec) -> dict[str, Any]:
    """Plain data for YAML (the inverse of spec_from_dict)."""
    data = dataclasses.asdict(spec)
    data["categories"] = list(spec.categories)
    data["seeds"] = list(spec.seeds)
    data["ablations"] = list(spec.ablations)
    data["overrides"] = dict(spec.overrides)
    data["variants"] = {name: dict(recipe) for name, recipe in spec.variants.items()}
    if not spec.variants:  # a sweep without variants saves as it did before they existed
        del data["variants"]
    return data


def dump_sweep(spec: SweepSpec) -> str:
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False)


def flags_digest(flag_overrides: Mapping[str, Any]) -> str:
    """A short hash of the recipe overrides given on the command line ("" for none): they change the
    experiment, so they mark the sweep's folder name (`sweep_name`). Computed once, where the flags
    are read: the same flags give the same name, other flags another."""
    if not flag_overrides:
        return ""
    return hashlib.sha256(json.dumps(dict(flag_overrides), sort_keys=True, default=str).encode()).hexdigest()[:6]


def sweep_name(spec: SweepSpec, digest: str = "") -> str:
    """The folder name of the sweep's results: its own name when it has one, else
    "<profile>-<dataset>"; with the command line's recipe flags (`digest`, from `flags_digest`)
    their hash added."""
    if spec.name is None and spec.profile is None:
        raise ValueError("resolve the profile before naming the sweep")
    base = spec.name or f"{spec.profile}-{spec.dataset}"
    if not digest:
        return base
    return check_path_name("sweep name", f"{base}-{digest}")  # the hash may take a long name past the limit


def expand(spec: SweepSpec) -> list[JobConfig]:
    """Every job of the sweep, seed-major then ablation then variant then category, so the first
    complete table (seed 0) arrives first. Each job's recipe: the variant's profile (else the
    sweep's), then the sweep's overrides, then the variant's overrides (see the module's docstring)."""
    if spec.profile is None:
        raise ValueError(f"the sweep needs a profile; valid: {', '.join(PROFILES)}")
    if not spec.categories:
        valid = get_dataset(spec.dataset).categories
        raise ValueError("the sweep names no categories" + (f"; valid: all, {', '.join(valid)}" if valid else ""))
    recipes = {name: variant_recipe(spec, name) for name in spec.variants} or {"": variant_recipe(spec, "")}
    configs = [
        JobConfig.from_dict(
            {
                **recipe,
                "category": category,
                "seed": seed,
                "ablation": ablation,
                "dataset": spec.dataset,
                "data_root": spec.data_root,
                **({"variant": variant} if variant else {}),
            }
        )
        for seed in spec.seeds
        for ablation in spec.ablations
        for variant, recipe in recipes.items()
        for category in spec.categories
    ]
    ids = [c.job_id for c in configs]
    if len(set(ids)) != len(ids):
        raise ValueError("the sweep repeats a job (same category, seed, ablation and variant); remove the duplicates")
    return configs


def check_recipes(spec: SweepSpec) -> None:
    """Build one job of each variant's recipe (the first category, the first seed), so a bad
    override fails before Ray starts, without expanding the sweep (the plan does that, once). A
    sweep whose profile waits on the cluster is checked under the paper profile."""
    checked = spec.replace(profile=spec.profile or "paper")
    for variant in checked.variants or {"": {}}:
        JobConfig.from_dict(
            {
                **variant_recipe(checked, variant),
                "category": checked.categories[0],
                "seed": checked.seeds[0],
                "ablation": checked.ablations[0] if checked.ablations[0] != "all" else "full",
                "dataset": checked.dataset,
                **({"variant": variant} if variant else {}),
            }
        )


def check_generated_counts(dataset: str, configs: Iterable[JobConfig]) -> None:
    """ValueError naming the first job that needs more normal training images than the generated
    data set `dataset` has per category: the harness generates it, so its count is known before it
    exists (nothing to check for a data set whose count only its files tell: its preflight counts)."""
    known = get_dataset(dataset).train_images
    if known is None:
        return
    for config in configs:
        needed, why = train_images_needed(config)
        if needed > known:
            raise ValueError(
                f"job {config.job_id} needs {needed} normal training images ({why}), but the generated {dataset} "
                f"data has {known} per category: lower val_images or memory_size"
            )


def variant_recipe(spec: SweepSpec, variant: str) -> dict[str, Any]:
    """The JobConfig overrides of one variant of the sweep ("" : the sweep without variants): the
    variant's profile (else the sweep's), then the sweep's overrides, then the variant's own."""
    own = {k: v for k, v in (spec.variants[variant] if variant else {}).items() if k != VARIANT_PROFILE}
    return {**profile(variant_profile(spec, variant)), **spec.overrides, **own}


def variant_profile(spec: SweepSpec, variant: str) -> str:
    """The profile a variant starts from: its own `profile`, else the sweep's."""
    if spec.profile is None:
        raise ValueError(f"the sweep needs a profile; valid: {', '.join(PROFILES)}")
    return str((spec.variants[variant] if variant else {}).get(VARIANT_PROFILE, spec.profile))


def describe_variant(spec: SweepSpec, variant: str) -> str:
    """ "profile P" and the variant's own overrides, as the banner shows them."""
    own = [f"{k}={v}" for k, v in spec.variants[variant].items() if k != VARIANT_PROFILE]
    return ", ".join([f"profile {variant_profile(spec, variant)}", *own])
