"""Sweep specs: YAML files, expansion into JobConfigs, stable ids and order, and the errors that
name the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.sweep import SweepSpec, dump_sweep, expand, load_sweep, parse_categories, spec_from_dict, sweep_name
from memseg.config import ABLATIONS, CATEGORIES

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
    with_steps = sweep_name(spec, {"steps": 20})
    assert with_steps.startswith("smoke-synthetic-") and with_steps == sweep_name(spec, {"steps": 20})
    assert with_steps != sweep_name(spec, {"steps": 21})
    assert sweep_name(spec.replace(name="mine"), {"steps": 20}).startswith("mine-")


def test_dump_and_reload_round_trip(tmp_path):
    spec = SweepSpec(name="x", categories=("bottle", "grid"), seeds=(0, 2), profile="tiny", overrides={"steps": 3})
    path = tmp_path / "x.yaml"
    path.write_text(dump_sweep(spec))
    assert load_sweep(path) == spec
