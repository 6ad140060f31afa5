"""Sweep specs: YAML files, expansion into JobConfigs, stable ids and order, recipe variants, and
the errors that name the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.sweep import (
    SweepSpec,
    check_generated_counts,
    dump_sweep,
    expand,
    flags_digest,
    load_sweep,
    parse_categories,
    select_variants,
    spec_from_dict,
    sweep_name,
)
from memseg.ablations import ABLATIONS
from memseg.names import CATEGORIES
from memseg.profiles import profile

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def test_shipped_sweeps_expand_to_the_documented_sizes():
    paper = expand(load_sweep(JOBS / "paper.yaml").replace(data_root="/data/mvtec"))
    assert len(paper) == 15 * 3
    assert {c.seed for c in paper} == {0, 1, 2} and {c.ablation for c in paper} == {"full"}
    assert all(c.image_size == 256 and c.steps == 2701 and c.dataset == "mvtec" for c in paper)

    ablations = expand(load_sweep(JOBS / "ablations.yaml"))
    assert len(ablations) == 15 * len(ABLATIONS)
    assert {c.ablation for c in ablations} == set(ABLATIONS)

    smoke = load_sweep(JOBS / "smoke.yaml")
    configs = expand(smoke)
    assert len(configs) == 15 and smoke.name == "smoke"
    assert all(c.image_size == 64 and c.steps == 150 and c.backbone_weights == "none" for c in configs)

    tiny = expand(load_sweep(JOBS / "tiny.yaml"))
    assert [c.category for c in tiny] == ["bottle", "carpet"] and tiny[0].steps == 4


def test_expansion_order_and_ids_are_stable():
    spec = SweepSpec(categories=("grid", "bottle"), seeds=(1, 0), ablations=("no_memory", "full"), profile="tiny")
    first, second = expand(spec), expand(spec)
    assert [c.job_id for c in first] == [c.job_id for c in second]
    # Seed-major, then ablation, then category, each in the order given.
    assert [(c.seed, c.ablation, c.category) for c in first[:4]] == [
        (1, "no_memory", "grid"),
        (1, "no_memory", "bottle"),
        (1, "full", "grid"),
        (1, "full", "bottle"),
    ]
    assert len({c.job_id for c in first}) == 8
    # The data root does not change the id: the same experiment on another mount point.
    moved = expand(spec.replace(data_root="/elsewhere"))
    assert [c.job_id for c in moved] == [c.job_id for c in first]


def test_profile_then_overrides_apply():
    spec = SweepSpec(categories=("bottle",), profile="smoke", overrides={"steps": 7, "lr": 1e-3})
    (config,) = expand(spec)
    assert (config.steps, config.lr, config.image_size) == (7, 1e-3, 64)
    assert config.job_id != expand(spec.replace(overrides={}))[0].job_id


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"categories": ["bottle", "bottel"]}, ["bottel", "bottle", "zipper", "all"]),
        ({"categories": "all", "ablations": ["full", "no_brain"]}, ["no_brain", "no_memory", "structure_only"]),
        ({"categories": "all", "profile": "huge"}, ["huge", "paper", "smoke", "tiny"]),
        ({"categories": "all", "colour": "red"}, ["colour", "categories", "seeds", "overrides"]),
        ({"categories": "all", "overrides": {"stepz": 3}}, ["stepz", "steps", "image_size"]),
        ({"categories": "all", "overrides": {"seed": 3}}, ["seed", "sweep keys"]),
        ({"categories": "all", "dataset": "imagenet"}, ["imagenet", "mvtec", "folder", "synthetic"]),
    ],
)
def test_bad_specs_name_the_valid_choices(data, names):
    with pytest.raises(ValueError) as err:
        spec_from_dict(data)
    for name in names:
        assert name in str(err.value)


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: all\nseedz: [0]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*seedz"):
        load_sweep(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_sweep(bad)


def test_all_categories_and_parsing():
    assert parse_categories("all") == CATEGORIES
    assert parse_categories("bottle, carpet") == ("bottle", "carpet")
    with pytest.raises(ValueError, match="cannot be mixed"):
        parse_categories("all,bottle")
    with pytest.raises(ValueError, match="integers"):
        spec_from_dict({"categories": "all", "seeds": "0,one"})


def test_default_name_depends_on_profile_dataset_and_flag_overrides():
    spec = SweepSpec(categories=("bottle",), profile="smoke")
    assert sweep_name(spec) == "smoke-synthetic"
    assert sweep_name(spec.replace(dataset="mvtec", data_root="/d")) == "smoke-mvtec"
    with_steps = sweep_name(spec, flags_digest({"steps": 20}))
    assert with_steps.startswith("smoke-synthetic-") and with_steps == sweep_name(spec, flags_digest({"steps": 20}))
    assert with_steps != sweep_name(spec, flags_digest({"steps": 21}))
    assert sweep_name(spec.replace(name="mine"), flags_digest({"steps": 20})).startswith("mine-")
    assert flags_digest({}) == "" and sweep_name(spec, flags_digest({})) == "smoke-synthetic"


def test_dump_and_reload_round_trip(tmp_path):
    spec = SweepSpec(name="x", categories=("bottle", "grid"), seeds=(0, 2), profile="tiny", overrides={"steps": 3})
    path = tmp_path / "x.yaml"
    path.write_text(dump_sweep(spec))
    assert load_sweep(path) == spec


def test_variants_expand_into_distinct_ids_and_a_sweep_without_them_keeps_its_ids():
    plain = SweepSpec(categories=("bottle", "grid"), seeds=(0, 1), profile="tiny")
    # Two variants with the same recipe are still two experiments: the name is in the id.
    spec = plain.replace(variants={"a": {}, "b": {}})
    configs = expand(spec)
    assert len(configs) == 2 * 2 * 2 and len({c.job_id for c in configs}) == len(configs)
    # Seed-major, then ablation, then variant, then category.
    assert [(c.seed, c.variant, c.category) for c in configs[:4]] == [
        (0, "a", "bottle"),
        (0, "a", "grid"),
        (0, "b", "bottle"),
        (0, "b", "grid"),
    ]
    assert configs[0].job_id.startswith("bottle-full-a-s0-") and configs[2].job_id.startswith("bottle-full-b-s0-")
    # Without variants: variant "", and ids as before variants existed (the prefix has no variant).
    before = expand(plain)
    assert all(c.variant == "" for c in before)
    assert before[0].job_id == "bottle-full-s0-" + before[0].job_id.rsplit("-", 1)[1]
    assert {c.job_id for c in before}.isdisjoint(c.job_id for c in configs)


def test_variant_precedence_profile_then_sweep_overrides_then_the_variant_s():
    spec = SweepSpec(
        categories=("bottle",),
        profile="tiny",
        overrides={"steps": 7, "lr": 1e-3},
        variants={"same": {}, "other": {"profile": "smoke"}, "own": {"profile": "smoke", "lr": 0.5, "batch_size": 2}},
    )
    same, other, own = expand(spec)
    # No profile of its own: the sweep's (tiny), then the sweep's overrides.
    assert (same.variant, same.steps, same.lr, same.batch_size, same.eval_batch_size) == ("same", 7, 1e-3, 4, 32)
    # Its own profile replaces the sweep's; the sweep's overrides still apply on top (--steps shortens every variant).
    assert (other.steps, other.lr, other.batch_size, other.eval_batch_size) == (7, 1e-3, 8, profile("smoke")["eval_batch_size"])
    # The variant's own overrides come last: they are what makes it this variant.
    assert (own.steps, own.lr, own.batch_size) == (7, 0.5, 2)


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", ".hidden", "tab\tbed", "new\nline", "", ".."])
def test_variant_names_must_be_names_not_paths(name):
    with pytest.raises(ValueError, match="variant name .* is refused"):
        spec_from_dict({"categories": "bottle", "variants": {name: {}}})


@pytest.mark.parametrize(
    ("variants", "names"),
    [
        ({"a": {"lrr": 0.1}}, ["variant 'a'", "lrr", "lr", "steps", "profile"]),
        ({"a": {"profile": "huge"}}, ["variant 'a'", "huge", "paper", "smoke", "tiny"]),
        ({"a": {"seed": 3}}, ["variant 'a'", "seed", "sweep keys"]),
        ({"a": {"variant": "b"}}, ["variant 'a'", "variant", "sweep keys"]),
        ({"a": ["lr", 0.1]}, ["variant 'a'", "mapping"]),
        (["a", "b"], ["variants", "mapping"]),
    ],
)
def test_bad_variants_name_the_valid_choices(variants, names):
    with pytest.raises(ValueError) as err:
        spec_from_dict({"categories": "bottle", "variants": variants})
    for name in names:
        assert name in str(err.value)


def test_select_variants_keeps_the_ids_of_the_ones_named():
    spec = SweepSpec(categories=("bottle",), profile="tiny", variants={"a": {}, "b": {"lr": 0.1}, "c": {"lr": 0.2}})
    picked = select_variants(spec, ["c", "a"])
    assert list(picked.variants) == ["c", "a"]
    ids = {c.variant: c.job_id for c in expand(spec)}
    assert {c.variant: c.job_id for c in expand(picked)} == {"c": ids["c"], "a": ids["a"]}
    with pytest.raises(ValueError, match=r"unknown variants \['d'\]; valid: a, b, c"):
        select_variants(spec, ["a", "d"])
    with pytest.raises(ValueError, match="defines no variants"):
        select_variants(spec.replace(variants={}), ["a"])


def test_variants_round_trip_and_a_sweep_without_them_saves_as_before(tmp_path):
    spec = SweepSpec(name="x", categories=("bottle",), profile="tiny", variants={"a": {}, "b": {"profile": "smoke", "lr": 0.1}})
    path = tmp_path / "x.yaml"
    path.write_text(dump_sweep(spec))
    assert load_sweep(path) == spec
    assert "variants" not in yaml.safe_load(dump_sweep(spec.replace(variants={})))
    # `name:` with no value in YAML is the sweep's own recipe.
    assert spec_from_dict({"categories": "bottle", "variants": {"a": None}}).variants == {"a": {}}


def test_the_recipes_sweep_pairs_the_official_recipe_with_tootouch_s_and_with_itself_in_bf16():
    data = yaml.safe_load((JOBS / "recipes.yaml").read_text())
    assert data["variants"] == {"official": {}, "tootouch": {"profile": "tootouch"}, "bf16": {"precision": "bf16"}}
    assert (data["categories"], data["seeds"], data["ablations"], data["profile"]) == ("all", [0, 1, 2], ["full"], "paper")
    configs = expand(load_sweep(JOBS / "recipes.yaml").replace(data_root="/data/mvtec"))
    assert len(configs) == 15 * 3 * 3 and len({c.job_id for c in configs}) == 135
    for variant, name, changes in (
        ("official", "paper", {}),
        ("tootouch", "tootouch", {}),
        ("bf16", "paper", {"precision": "bf16"}),
    ):
        mine = [c for c in configs if c.variant == variant]
        assert len(mine) == 45 and {c.category for c in mine} == set(CATEGORIES)
        recipe = profile(name) | changes
        assert all(getattr(c, k) == v for c in mine for k, v in recipe.items())
    # The official and the bf16 variants differ in the precision alone: a paired comparison of it.
    official, bf16 = ([c for c in configs if c.variant == v] for v in ("official", "bf16"))
    assert all(a.replace(variant="", precision="fp32") == b.replace(variant="", precision="fp32") for a, b in zip(official, bf16))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"variants": {"a": {"lr": "fast"}}},
            "variant 'a' (profile: NAME and JobConfig overrides): lr must be a finite number, got 'fast'",
        ),
        ({"variants": {"a": {"profile": 3}}}, "variant 'a' (profile: NAME and JobConfig overrides): profile must be text"),
        ({"overrides": {"steps": 2.5}}, "steps must be an integer, got 2.5"),
        ({"overrides": {"lr": float("inf")}}, "lr must be a finite number, got inf"),
        ({"overrides": {1: 2}}, "unknown overrides ['1']"),
        ({"gpus_per_job": "two"}, "gpus_per_job must be a finite number or null, got 'two'"),
        ({"max_retries": 1.5}, "max_retries must be an integer, got 1.5"),
        ({"categories": 5}, "categories must be a list or comma-separated text, got 5"),
        ({"categories": [["bottle"]]}, "categories must be a list or comma-separated text"),
        ({"name": 7}, "name must be text or null, got 7"),
    ],
)
def test_a_sweep_value_of_the_wrong_kind_is_refused_naming_it(data, message):
    with pytest.raises(ValueError) as refused:
        spec_from_dict({"categories": ["bottle"], **data})
    assert message in str(refused.value)


def test_one_seed_may_be_given_as_a_number():
    assert spec_from_dict({"categories": ["bottle"], "seeds": 3}).seeds == (3,)


def test_jobs_needing_more_than_the_generated_set_are_refused_before_it_exists():
    spec = SweepSpec(categories=("bottle",), profile="smoke", overrides={"val_every": 5, "val_images": 50})
    with pytest.raises(ValueError, match="needs 61 normal training images .* the generated synthetic data has 60"):
        check_generated_counts("synthetic", expand(spec))
    check_generated_counts("synthetic", expand(spec.replace(overrides={"val_every": 5, "val_images": 49})))  # 10 + 49 + 1 = 60
    check_generated_counts("mvtec", expand(spec.replace(dataset="mvtec")))  # real data: its preflight counts the files
