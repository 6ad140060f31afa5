"""Paired comparisons on synthetic result tables with planted effects: detection, false alarms,
pairing, unpaired rows, protocol refusal, the statistics against scipy, the CLI and its gate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from harness import compare, report, report_html, store
from harness.__main__ import main
from harness.compare_view import difference_to_full_table
from memseg.config import JobConfig
from memseg.names import CATEGORIES
from memseg.profiles import profile
from memseg.protocol import PROTOCOL_FIELDS, protocol_for
from memseg.result import METRICS as METRIC_LABELS
from tests.harness.plans import empty_scores

METRICS = tuple(METRIC_LABELS)


def make_rows(
    effect: float = 0.0,
    *,
    seed: int = 0,
    categories: tuple[str, ...] = CATEGORIES,
    seeds: tuple[int, ...] = (0, 1, 2),
    ablations: tuple[str, ...] = ("full", "no_memory"),
    sweep: str = "s",
    run_noise: float = 1.2,
    candidate_changes: dict | None = None,
) -> pd.DataFrame:
    """Result rows with the store's schema. Each metric of a run, in points: a category level
    (85-93) + a (category, seed) term shared by both ablations (same data split and memory bank)
    + run noise; every ablation but the first gets `effect` points added. The run noise of the
    four metrics is correlated (0.8 of it is one draw per run): one trained model gives all four.
    `candidate_changes` sets JobConfig fields of the non-first ablations."""
    rng = np.random.default_rng(seed)
    level = {m: rng.uniform(85, 93, len(categories)) for m in METRICS}
    rows = []
    for k, category in enumerate(categories):
        for s in seeds:
            shared = {m: rng.normal(0.0, 1.0) for m in METRICS}
            for i, ablation in enumerate(ablations):
                changes = (candidate_changes or {}) if i else {}
                config = JobConfig.from_dict(
                    profile("smoke") | {"category": category, "seed": s, "ablation": ablation, "dataset": "synthetic"} | changes
                )
                row = store.empty_row()
                row.update(
                    job_id=config.job_id,
                    sweep=sweep,
                    category=category,
                    seed=s,
                    ablation=ablation,
                    status="ok",
                    profile="smoke",
                    dataset="synthetic",
                    config_json=config.to_json(),
                    attempts=1,
                )
                row.update(protocol_for(config).columns())
                run = rng.normal()
                for m in METRICS:
                    noise = run_noise * (0.8 * run + 0.6 * rng.normal())
                    row[m] = (level[m][k] + shared[m] + noise + (effect if i else 0.0)) / 100.0
                rows.append(row)
    return pd.DataFrame(rows)


def write(results: Path, rows: pd.DataFrame) -> None:
    for row in rows.to_dict("records"):
        store.write_job(results, {str(k): v for k, v in row.items()}, empty_scores())


def overall(study: compare.Study, comparison: int = 0) -> dict[str, compare.Estimate]:
    return {e.metric: e for e in study.comparisons[comparison].estimates if e.scope == compare.OVERALL}


# ---------------------------------------------------------------------------------------------
# Detection and false alarms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("effect, verdict", [(2.0, compare.BETTER), (-2.0, compare.WORSE)])
def test_a_planted_two_point_effect_over_15_categories_and_3_seeds_is_detected(effect, verdict):
    rows = make_rows(effect, seed=1)
    study = compare.compare_ablations(rows, "full", ["no_memory"], METRICS)
    estimates = overall(study)
    assert set(estimates) == set(METRICS)
    for metric, e in estimates.items():
        assert (e.n_pairs, e.n_categories) == (45, 15), metric
        assert e.verdict == verdict, (metric, e)
        assert e.ci_low < effect < e.ci_high, (metric, e)
        assert e.p_holm < 0.05 and e.mde < abs(effect), (metric, e)
    # Each category has 3 seeds: on its own it cannot reach significance, and says so.
    bottle = study.comparisons[0].estimate("image_auroc", "bottle")
    assert bottle.n_pairs == 3 and bottle.p_value >= 0.25 and math.isinf(bottle.mde)  # smallest p: 2 / 2**3
    assert bottle.verdict == compare.NO_DIFFERENCE


def test_a_zero_effect_is_flagged_in_at_most_5_of_100_seeded_simulations():
    """A simulation is flagged when any of the 4 metrics gets a verdict other than "no detectable
    difference" (the family-wise error Holm controls at 5%). For speed this test uses 1000
    bootstrap resamples (not 10000) and overall estimates only; the pairing is the real one."""
    template = make_rows(0.0, seed=0)
    # make_rows' noise model, vectorised: category level + (category, seed) term + run noise
    # correlated across the metrics of one run.
    category = pd.factorize(template["category"])[0]
    pair = pd.factorize(template["category"] + "/" + template["seed"].astype(str))[0]
    settings = compare.Settings(resamples=1000)
    flagged = 0
    for simulation in range(100):
        rng = np.random.default_rng(simulation)
        run = rng.normal(size=len(template))
        values = {
            m: (
                rng.uniform(85, 93, category.max() + 1)[category]
                + rng.normal(0, 1.0, pair.max() + 1)[pair]
                + 1.2 * (0.8 * run + 0.6 * rng.normal(size=len(template)))
            )
            / 100
            for m in METRICS
        }
        study = compare.compare_ablations(template.assign(**values), "full", ["no_memory"], METRICS, settings, per_category=False)
        flagged += any(e.significant for e in overall(study).values())
    print(f"zero effect flagged in {flagged} of 100 simulations")
    assert flagged <= 5


# ---------------------------------------------------------------------------------------------
# Pairing
# ---------------------------------------------------------------------------------------------


def test_rows_pair_on_category_seed_and_config_leaving_out_what_is_compared():
    baseline = make_rows(0.0, categories=("bottle", "grid"), seeds=(0, 1), ablations=("full",), sweep="a")
    # The candidate sweep ran 300 steps: that is what is compared, so it is not a pairing key.
    candidate = make_rows(
        0.0,
        categories=("bottle", "grid"),
        seeds=(0, 1),
        ablations=("no_msff", "full"),
        sweep="b",
        candidate_changes={"steps": 300},
    )
    candidate = candidate[candidate["ablation"] == "full"]
    study = compare.compare_sweeps(baseline, candidate, METRICS, baseline="a", candidate="b")
    c = study.comparisons[0]
    assert c.differs == ("steps: 150 -> 300",)
    assert [(p.category, p.seed) for p in c.pairs] == [("bottle", 0), ("bottle", 1), ("grid", 0), ("grid", 1)]
    by_key = {(r.category, r.seed): r.job_id for r in baseline.itertuples()}
    assert all(p.baseline_job == by_key[(p.category, p.seed)] for p in c.pairs)
    assert all(p.candidate_job != p.baseline_job for p in c.pairs) and not c.unpaired
    # Within one sweep only the ablation differs; a different seed never pairs.
    within = compare.compare_ablations(make_rows(1.0, categories=("bottle",), seeds=(3, 4)), "full", ["no_memory"], METRICS)
    assert within.comparisons[0].differs == ("ablation: full -> no_memory",)
    assert [(p.category, p.seed) for p in within.comparisons[0].pairs] == [("bottle", 3), ("bottle", 4)]


def test_unpaired_rows_are_listed_with_their_reason_never_dropped_silently():
    rows = make_rows(0.0, categories=("bottle", "grid"), seeds=(0, 1, 2))
    lost = (rows["ablation"] == "no_memory") & (rows["category"] == "grid") & (rows["seed"] == 2)
    broken = (rows["ablation"] == "full") & (rows["category"] == "bottle") & (rows["seed"] == 1)
    rows.loc[broken, ["status", "error"]] = ["failed", "loss became non-finite at step 3 of 150\ntraceback..."]
    rows.loc[broken, list(METRICS)] = math.nan
    rows = rows[~lost]
    c = compare.compare_ablations(rows, "full", ["no_memory"], METRICS).comparisons[0]
    reasons = {(u.side, u.category, u.seed): u.reason for u in c.unpaired}
    assert reasons == {
        ("baseline", "bottle", 1): "failed: loss became non-finite at step 3 of 150",
        ("candidate", "bottle", 1): "its partner in full failed",
        ("baseline", "grid", 2): "no partner in no_memory",
    }
    assert len(c.pairs) == 4 and c.estimate("pixel_f1").n_pairs == 4


def test_rows_measured_under_different_protocols_are_refused_naming_the_field():
    rows = make_rows(0.0, categories=("bottle",), seeds=(0, 1))
    native = make_rows(
        0.0,
        categories=("bottle",),
        seeds=(0, 1),
        ablations=("no_msff", "full"),
        sweep="b",
        candidate_changes={"eval_resolution": "native"},
    )
    native = native[native["ablation"] == "full"]
    with pytest.raises(compare.ProtocolMismatch, match="protocol field 'eval_resolution' differs: 'model' in the baseline"):
        compare.compare_sweeps(rows[rows["ablation"] == "full"], native, METRICS)
    newer = rows.copy()
    newer.loc[newer["ablation"] == "no_memory", "metrics_version"] = "2"
    with pytest.raises(compare.ProtocolMismatch, match="'metrics_version' differs: '1' in the baseline .* but '2'"):
        compare.compare_ablations(newer, "full", ["no_memory"], METRICS)
    scored = rows.copy()  # the same numbers scored by another data set's protocol never pair either
    scored.loc[scored["ablation"] == "no_memory", "scoring"] = "visa"
    with pytest.raises(compare.ProtocolMismatch, match="'scoring' differs: 'mvtec_ad' in the baseline .* but 'visa'"):
        compare.compare_ablations(scored, "full", ["no_memory"], METRICS)


def test_old_result_files_without_protocol_columns_load_as_todays_protocol(tmp_path):
    rows = make_rows(0.0, categories=("bottle",), seeds=(0,), sweep="old")
    write(tmp_path, rows)
    for path in (tmp_path / "old" / "jobs").glob("*.parquet"):  # rewrite as a file from before
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(list(PROTOCOL_FIELDS)), path)
    assert not set(PROTOCOL_FIELDS) & set(pq.read_table(path).column_names)
    loaded = store.load_results(tmp_path, "old")
    assert loaded["eval_resolution"].tolist() == ["model", "model"]
    assert loaded["top_k"].tolist() == [100, 100] and loaded["metrics_version"].tolist() == ["1", "1"]
    assert loaded["aupro_fpr_limit"].tolist() == [0.3, 0.3] and loaded["mask_resize"].tolist() == ["nearest-exact"] * 2
    # ... and so they pair with rows written today.
    fresh = make_rows(0.0, categories=("bottle",), seeds=(0,), ablations=("no_msff", "full"), sweep="new")
    study = compare.compare_sweeps(loaded[loaded["ablation"] == "full"], fresh[fresh["ablation"] == "full"], METRICS)
    assert len(study.comparisons[0].pairs) == 1


# ---------------------------------------------------------------------------------------------
# The statistics against scipy and hand computation
# ---------------------------------------------------------------------------------------------


def test_wilcoxon_and_holm_agree_with_scipy_and_hand_computation():
    diffs = [1.5, -0.5, 2.0, 3.0, 0.0, 4.5, 2.5, -1.0]
    assert compare.wilcoxon_p(diffs) == pytest.approx(stats.wilcoxon(diffs).pvalue, abs=1e-12)
    assert compare.wilcoxon_p([1, 2, 3, 4, 5, 6]) == pytest.approx(2 / 64)  # exact: only all-positive is as extreme
    assert compare.wilcoxon_p([0.0, 0.0]) == 1.0 and math.isnan(compare.wilcoxon_p([]))
    # Holm by hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then running maximum.
    assert compare.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = compare.holm([0.2, math.nan, 0.6])
    assert adjusted[0] == pytest.approx(0.4) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.6)
    assert compare.wilcoxon_min_pairs(0.05) == 6


def test_overall_estimate_is_the_mean_of_category_means_with_a_hierarchical_bootstrap():
    rows = make_rows(1.0, categories=("bottle", "grid", "carpet"), seeds=(0, 1, 2, 3), seed=5)
    rows = rows[~((rows["category"] == "grid") & (rows["seed"] == 3))]  # grid has 3 seeds, others 4
    study = compare.compare_ablations(rows, "full", ["no_memory"], METRICS, compare.Settings(resamples=4000, seed=7))
    c = study.comparisons[0]
    wide = rows.pivot_table(index=["category", "seed"], columns="ablation", values="pixel_auroc") * 100
    d = (wide["no_memory"] - wide["full"]).dropna()
    e = c.estimate("pixel_auroc")
    assert e.diff == pytest.approx(d.groupby(level="category").mean().mean(), abs=1e-9)
    assert e.p_value == pytest.approx(stats.wilcoxon(d.to_numpy()).pvalue, abs=1e-12)
    assert e.sd_diff == pytest.approx(d.std(ddof=1), abs=1e-9)
    grid = c.estimate("pixel_auroc", "grid")
    assert grid.n_pairs == 3 and grid.diff == pytest.approx(d.loc["grid"].mean(), abs=1e-9)
    # Same settings, same numbers (the bootstrap is seeded).
    again = compare.compare_ablations(rows, "full", ["no_memory"], METRICS, compare.Settings(resamples=4000, seed=7))
    assert again.comparisons[0].estimate("pixel_auroc") == e


def test_bootstrap_with_one_value_per_group_is_the_plain_bootstrap_of_scipy():
    values = np.array([0.3, -1.2, 2.2, 0.9, 1.7, -0.4, 0.1, 1.1, 2.9, 0.5])
    replicates = compare.bootstrap_means([np.array([v]) for v in values], 40_000, np.random.default_rng(0))
    ours = np.percentile(replicates, [2.5, 97.5])
    theirs = stats.bootstrap((values,), np.mean, n_resamples=40_000, method="percentile", random_state=1).confidence_interval
    assert ours == pytest.approx([theirs.low, theirs.high], abs=0.03)
    # One group: resampling its values only.
    single = compare.bootstrap_means([values], 40_000, np.random.default_rng(0))
    assert np.percentile(single, [2.5, 97.5]) == pytest.approx([theirs.low, theirs.high], abs=0.03)


def test_detectable_effect_and_seeds_needed_agree_with_simulated_t_tests():
    sd, n = 2.0, 12
    mde = compare.minimum_detectable_effect(n, sd)
    # About (z_0.975 + z_0.8) * sd / sqrt(n) for large n; at n = 12 the t distribution adds a little.
    assert 2.8016 * sd / math.sqrt(n) < mde < 1.15 * 2.8016 * sd / math.sqrt(n)
    rng = np.random.default_rng(0)
    samples = rng.normal(mde, sd, size=(20_000, n))
    power = float(np.mean(stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05))
    assert power == pytest.approx(0.8, abs=0.015)
    needed = compare.pairs_needed(1.0, sd)
    assert compare.minimum_detectable_effect(needed, sd) <= 1.0 < compare.minimum_detectable_effect(needed - 1, sd)
    assert math.isinf(compare.minimum_detectable_effect(5, sd)) and compare.pairs_needed(100.0, sd) == 6
    study = compare.compare_ablations(make_rows(0.0, seed=3), "full", ["no_memory"], METRICS, compare.Settings(effect=0.5))
    e = overall(study)["image_auroc"]
    assert e.seeds_needed == math.ceil(compare.pairs_needed(0.5, e.sd_diff) / 15)


# ---------------------------------------------------------------------------------------------
# The CLI, the gate and the summary
# ---------------------------------------------------------------------------------------------


def test_compare_cli_prints_tables_markdown_and_json(tmp_path, capsys):
    write(tmp_path, make_rows(-2.0, categories=("bottle", "carpet", "grid"), seeds=(0, 1, 2), sweep="smoke"))
    assert main(["compare", "--results", str(tmp_path), "--name", "smoke", "--ablations", "full,no_memory"]) == 0
    out = capsys.readouterr().out
    assert "no_memory vs full: overall" in out and "no_memory vs full: by category" in out and "10000 resamples" in out
    assert main(["compare", "--results", str(tmp_path), "--name", "smoke", "--markdown", "--effect", "0.5"]) == 0
    markdown = capsys.readouterr().out
    assert "### no_memory vs full: overall" in markdown and "| image AUROC |" in markdown and "seeds for ±0.5" in markdown
    assert main(["compare", "--results", str(tmp_path), "--name", "smoke", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    c = data["comparisons"][0]
    assert data["settings"]["resamples"] == 10000 and data["protocol"]["eval_resolution"] == "model"
    assert len(c["pairs"]) == 9 and c["unpaired"] == []
    assert {e["scope"] for e in c["estimates"]} == {"bottle", "carpet", "grid", "overall"}


def test_regression_gate_exits_1_naming_the_metric_and_0_within_the_margin(tmp_path, capsys):
    rows = make_rows(0.0, seed=2)
    base = rows[rows["ablation"] == "full"].assign(sweep="main")
    worse = rows[rows["ablation"] == "no_memory"].copy()
    worse["image_auroc"] -= 0.03  # the change costs 3 points of image AUROC and nothing else
    cand = make_rows(0.0, seed=2, ablations=("no_msff", "full"), sweep="change")
    cand = cand[cand["ablation"] == "full"].assign(**{m: worse[m].to_numpy() for m in METRICS})
    write(tmp_path, base)
    write(tmp_path, cand)
    argv = ["compare", "--results", str(tmp_path), "--baseline", "main", "--candidate", "change"]
    assert main(argv + ["--fail-if-worse", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "regression:" in err and "image AUROC" in err and "pixel AUROC" not in err
    assert main(argv + ["--fail-if-worse", "5"]) == 0
    assert "gate passed" in capsys.readouterr().err


def test_user_errors_exit_2_with_one_clear_line(tmp_path, capsys):
    write(tmp_path, make_rows(0.0, categories=("bottle",), seeds=(0, 1), sweep="s"))
    native = make_rows(
        0.0,
        categories=("bottle",),
        seeds=(0, 1),
        ablations=("no_msff", "full"),
        sweep="n",
        candidate_changes={"eval_resolution": "native"},
    )
    write(tmp_path, native[native["ablation"] == "full"])
    other_seeds = make_rows(0.0, categories=("bottle",), seeds=(5,), ablations=("no_msff", "full"), sweep="o")
    write(tmp_path, other_seeds[other_seeds["ablation"] == "full"])
    cases = [
        (["--name", "nope"], "no sweep 'nope' under"),
        (["--name", "s", "--ablations", "full,no_msff"], "ablation(s) ['no_msff'] have no rows in s"),
        (["--name", "s", "--ablations", "full,bogus"], "ablation(s) ['bogus'] have no rows in s; present: full, no_memory"),
        (["--baseline", "s"], "needs both --baseline SWEEP and --candidate SWEEP"),
        (["--baseline", "s", "--candidate", "n"], "protocol field 'eval_resolution' differs"),
        (["--name", "s", "--metrics", "auc"], "unknown metrics ['auc']"),
        (["--baseline", "s", "--candidate", "o", "--fail-if-worse", "0.5"], "no run of o pairs with a run of s"),
    ]
    for extra, message in cases:
        assert main(["compare", "--results", str(tmp_path), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)


def test_the_summary_shows_the_difference_to_full_with_its_interval_and_a_marker():
    rows = make_rows(-2.0, seed=4, ablations=("full", "no_memory", "no_msff"))
    rows.loc[rows["ablation"] == "no_msff", list(METRICS)] = rows.loc[rows["ablation"] == "full", list(METRICS)].to_numpy()
    table = next(t for t in report.summary_tables(rows, "s") if t.title == "s · difference to full")
    assert table.headers[:3] == ("ablation", "pairs", "Δ image AUROC")
    no_memory, no_msff = table.rows
    assert no_memory[0] == "no_memory" and no_memory[1] == "45"
    assert all(cell.endswith("▼") and cell.startswith("-") and "[" in cell for cell in no_memory[2:])
    assert no_msff[2].startswith("+0.00 [+0.00, +0.00]") and "▼" not in "".join(no_msff)
    assert difference_to_full_table(rows[rows["ablation"] == "full"], METRIC_LABELS) is None


def test_the_html_report_has_a_forest_plot_and_the_tables_per_comparison(tmp_path):
    write(
        tmp_path, make_rows(-2.0, categories=("bottle", "carpet", "grid"), ablations=("full", "no_memory", "no_msff"), sweep="s")
    )
    page = report_html.build_report(tmp_path, "s")
    section = page[page.index('<section id="comparisons">') :]
    section = section[: section.index("</section>")]
    assert section.count('<img src="data:image/png;base64,') == 2
    for name in ("no_memory vs full", "no_msff vs full"):
        assert f"{name}: overall" in section and f"{name}: by category" in section


# Recipe variants: make_rows' four ablations stand in for two variants x two ablations, so the
# variants of one (category, seed) share its term; only tootouch's full model gets the effect.
_AS_VARIANTS = {
    "full": ("full", "official", {}),
    "no_memory": ("full", "tootouch", {"lr": 3e-3}),
    "no_msff": ("no_memory", "official", {}),
    "unscaled": ("no_memory", "tootouch", {"lr": 3e-3}),
}


def make_variant_rows(effect: float, **kwargs) -> pd.DataFrame:
    rows = make_rows(effect, ablations=tuple(_AS_VARIANTS), sweep="recipes", **kwargs)
    rows.loc[~rows["ablation"].isin(["full", "no_memory"]), list(METRICS)] -= effect / 100.0  # only tootouch · full
    out = []
    for row in rows.to_dict("records"):
        ablation, variant, changes = _AS_VARIANTS[row["ablation"]]
        config = JobConfig.from_dict({**json.loads(row["config_json"]), "ablation": ablation, "variant": variant, **changes})
        out.append({**row, "ablation": ablation, "variant": variant, "job_id": config.job_id, "config_json": config.to_json()})
    return pd.DataFrame(out)


def test_variants_pair_on_category_and_seed_within_each_ablation():
    rows = make_variant_rows(-2.0, seed=3)
    study = compare.compare_variants(rows, "official", ["tootouch"], METRICS, sweep="recipes")
    assert [c.name for c in study.comparisons] == ["tootouch vs official · full", "tootouch vs official · no_memory"]
    full, no_memory = study.comparisons
    assert (full.baseline.variant, full.candidate.variant, full.baseline.ablation) == ("official", "tootouch", "full")
    assert len(full.pairs) == 15 * 3 and not full.unpaired
    jobs = rows.set_index("job_id")
    for pair in full.pairs:
        b, c = jobs.loc[pair.baseline_job], jobs.loc[pair.candidate_job]
        assert (b.category, b.seed, b.variant, b.ablation) == (pair.category, pair.seed, "official", "full")
        assert (c.category, c.seed, c.variant, c.ablation) == (pair.category, pair.seed, "tootouch", "full")
    assert "variant: official -> tootouch" in full.differs and any(d.startswith("lr: ") for d in full.differs)
    assert full.estimate("image_auroc").verdict == compare.WORSE
    assert full.estimate("image_auroc").diff == pytest.approx(-2.0, abs=0.6)
    assert abs(no_memory.estimate("image_auroc").diff) < 0.6
    # The Holm family is every metric x comparison, as with --ablations.
    assert all(e.p_holm >= e.p_value for c in study.comparisons for e in c.estimates)
    only = compare.compare_variants(rows, "official", ["tootouch"], METRICS, ablations=["no_memory"])
    assert [c.name for c in only.comparisons] == ["tootouch vs official · no_memory"]


def test_ablations_are_compared_within_each_variant_never_across():
    rows = make_variant_rows(0.0, categories=("bottle", "grid"), seeds=(0, 1))
    study = compare.compare_ablations(rows, "full", ["no_memory"], METRICS, sweep="recipes")
    assert [c.name for c in study.comparisons] == ["no_memory vs full · official", "no_memory vs full · tootouch"]
    for c, variant in zip(study.comparisons, ("official", "tootouch")):
        assert c.candidate.label == f"no_memory · {variant}" and len(c.pairs) == 4
        jobs = rows.set_index("job_id")
        assert (
            {jobs.loc[p.baseline_job].variant for p in c.pairs}
            == {jobs.loc[p.candidate_job].variant for p in c.pairs}
            == {variant}
        )
    table = difference_to_full_table(rows, METRIC_LABELS, "recipes")
    assert table is not None and [r[0] for r in table.rows] == ["no_memory · official", "no_memory · tootouch"]


def test_two_sweeps_with_the_same_variants_are_compared_variant_by_variant():
    rows = make_variant_rows(0.0, categories=("bottle", "grid"), seeds=(0, 1))
    full = rows[rows["ablation"] == "full"]
    study = compare.compare_sweeps(full, full.assign(sweep="again"), METRICS, baseline="recipes", candidate="again")
    assert [c.name for c in study.comparisons] == ["again vs recipes · full · official", "again vs recipes · full · tootouch"]
    assert [(c.baseline.variant, len(c.pairs)) for c in study.comparisons] == [("official", 4), ("tootouch", 4)]


def test_the_summary_of_a_sweep_with_variants_shows_their_paired_difference():
    rows = make_variant_rows(-2.0, seed=3)
    tables = {t.title: t for t in report.summary_tables(rows, "recipes")}
    between = tables["recipes · difference to official"]
    assert between.headers[:2] == ("variant", "pairs") and [r[:2] for r in between.rows] == [
        ("full · tootouch", "45"),
        ("no_memory · tootouch", "45"),
    ]
    assert between.rows[0][2].startswith("-") and between.rows[0][2].endswith("▼")  # image AUROC, planted -2 points
    assert "variant minus official" in between.caption
    assert "recipes · difference to official" not in {
        t.title for t in report.summary_tables(rows[rows["variant"] == "official"], "r")
    }


def test_compare_cli_variants(tmp_path, capsys):
    rows = make_variant_rows(-2.0, categories=("bottle", "carpet", "grid"), seeds=(0, 1))
    lost = (rows["variant"] == "tootouch") & (rows["category"] == "grid") & (rows["seed"] == 1) & (rows["ablation"] == "full")
    write(tmp_path, rows[~lost])
    argv = ["compare", "--results", str(tmp_path), "--name", "recipes"]
    assert main([*argv, "--variants", "official,tootouch"]) == 0
    out = capsys.readouterr().out
    assert "tootouch vs official · full: overall" in out and "tootouch vs official · no_memory: by category" in out
    smoke_lr = profile("smoke")["lr"]  # the rows are smoke jobs; tootouch's are planted at lr 3e-3
    assert f"compared: lr: {smoke_lr:g} -> 0.003; variant: official -> tootouch" in " ".join(out.split())
    unpaired = next(line for line in out.splitlines() if "grid-full-official-s1" in line)
    assert "official" in unpaired and "no partner in tootouch" in unpaired
    assert main([*argv, "--variants", "official,tootouch", "--ablations", "full", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["comparisons"]) == 1 and len(data["comparisons"][0]["pairs"]) == 5
    assert data["comparisons"][0]["candidate"] == {
        "label": "tootouch",
        "sweep": "recipes",
        "ablation": "full",
        "variant": "tootouch",
    }
    cases = [
        (["--variants", "official,paper"], "variant(s) ['paper'] have no rows in recipes; present: official, tootouch"),
        (["--variants", "official"], "--variants needs a baseline and at least one candidate"),
        (["--variants", "official,official"], "also a candidate"),
        (
            ["--variants", "official,tootouch", "--ablations", "no_msff"],
            "ablation(s) ['no_msff'] have no rows of variant official",
        ),
        (["--ablations", "full"], "--variants official,tootouch"),
    ]
    for extra, message in cases:
        assert main([*argv, *extra]) == 2, extra
        err = " ".join(capsys.readouterr().err.split())
        assert message in err and "Traceback" not in err, (extra, err)
    two = ["compare", "--results", str(tmp_path), "--baseline", "recipes", "--candidate", "recipes", "--variants", "a,b"]
    assert main(two) == 2 and "give --name S" in capsys.readouterr().err
