"""Paired comparisons of result rows: is the difference between two ablations or two recipe
variants of a sweep, or between two sweeps (two code versions), larger than seed noise? Pure
statistics on the store's rows (pandas in, frozen dataclasses out); rendering lives in
harness.compare_view.

Method (all differences are candidate minus baseline, in percentage points):
- Rows pair on (category, seed, every other experiment field), leaving out what is compared:
  every field that is constant within each side but differs between them (the ablation; a
  variant's name and recipe; between two sweeps, whatever changed), shown as `differs`. Two
  recipe variants are never pooled: each comparison takes one variant (or one ablation) per side.
  Rows without a partner are listed, never dropped.
- Rows measured under different evaluation protocols never pair: `ProtocolMismatch` names the field.
- Per metric and scope (each category, and overall): the mean paired difference (overall: the
  mean of the category means, as the summary's average row), a percentile bootstrap interval
  (overall: resample categories, then seeds within each; a category: its seeds), seeded, and a
  two-sided Wilcoxon signed-rank p-value over the pairs (scipy.stats.wilcoxon).
- Holm's correction across every metric x comparison of a scope. The verdict is "better" or
  "worse" only when the Holm-adjusted p is below alpha AND the interval excludes zero on that
  side; otherwise "no detectable difference".
- The smallest detectable difference (80% power, two-sided alpha 0.05) and the pairs (seeds)
  needed for a given effect come from the paired t-test's power on the observed spread of the
  pair differences (noncentral t). Wilcoxon's efficiency relative to it is 3/pi = 95% for normal
  noise; and as it cannot reach p < alpha with fewer than log2(2 / alpha) pairs (6 at 0.05),
  fewer pairs can detect nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.store import STATUS_OK, group_label, variants_of
from memseg.cli_errors import UserError
from memseg.config import experiment_fields
from memseg.protocol import PROTOCOL_FIELDS

OVERALL = "overall"
BETTER, WORSE, NO_DIFFERENCE, NO_PAIRS = "better", "worse", "no detectable difference", "no pairs"
BASELINE, CANDIDATE = "baseline", "candidate"
# Always part of the pairing key, never "what is compared".
_KEYS = ("category", "seed")


class ProtocolMismatch(UserError, ValueError):
    """Two rows that would pair were measured under different evaluation protocols."""


@dataclass(frozen=True)
class Settings:
    """How a comparison is computed. `effect` (points): also say how many seeds would detect it."""

    resamples: int = 10_000
    seed: int = 0
    alpha: float = 0.05
    power: float = 0.8
    confidence: float = 0.95
    effect: float | None = None

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError(f"resamples must be >= 1, got {self.resamples}")
        for name in ("alpha", "power", "confidence"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {value}")
        if self.effect is not None and not self.effect > 0:
            raise ValueError(f"effect must be > 0 percentage points, got {self.effect}")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a sweep, and the ablation and recipe variant taken from it (None:
    all of them; a sweep without variants has one, "")."""

    label: str
    sweep: str
    ablation: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class PairedJobs:
    category: str
    seed: int
    baseline_job: str
    candidate_job: str


@dataclass(frozen=True)
class Unpaired:
    """A row that takes no part in the statistics, and why."""

    side: str  # baseline | candidate
    job_id: str
    category: str
    seed: int
    ablation: str
    reason: str
    variant: str = ""


@dataclass(frozen=True)
class Estimate:
    """One metric in one scope (a category, or OVERALL). Values in percentage points."""

    metric: str
    scope: str
    n_pairs: int
    n_categories: int
    baseline_mean: float
    candidate_mean: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float  # Wilcoxon signed-rank, two-sided, over the pairs
    p_holm: float  # Holm-adjusted over every metric x comparison of the scope
    verdict: str
    sd_diff: float  # sample standard deviation of the pair differences
    mde: float  # smallest difference detectable with the power asked (inf: too few pairs)
    seeds_needed: int | None  # seeds (per category) to detect Settings.effect; None when not asked

    @property
    def significant(self) -> bool:
        return self.verdict in (BETTER, WORSE)


@dataclass(frozen=True)
class Comparison:
    name: str
    baseline: Side
    candidate: Side
    differs: tuple[str, ...]  # "field: baseline value -> candidate value", what is compared
    pairs: tuple[PairedJobs, ...]
    unpaired: tuple[Unpaired, ...]
    estimates: tuple[Estimate, ...]
    protocol: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # shared by every pair

    def estimate(self, metric: str, scope: str = OVERALL) -> Estimate:
        for e in self.estimates:
            if e.metric == metric and e.scope == scope:
                return e
        raise KeyError(f"no estimate of {metric} for {scope} in {self.name}")

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.scope for e in self.estimates if e.scope != OVERALL))


@dataclass(frozen=True)
class Study:
    """Every comparison asked for, corrected together."""

    comparisons: tuple[Comparison, ...]
    metrics: tuple[str, ...]
    settings: Settings
    protocol: Mapping[str, Any]  # the protocol of every paired row when all comparisons share one, else {}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (NaN and infinity become None)."""
        return _jsonable(dataclasses.asdict(self))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def compare_ablations(
    rows: pd.DataFrame,
    baseline: str,
    candidates: Sequence[str],
    metrics: Sequence[str],
    settings: Settings = Settings(),
    sweep: str = "",
    per_category: bool = True,
) -> Study:
    """Each candidate ablation against the baseline ablation, within the rows of one sweep and
    within each of its recipe variants (one comparison per candidate and variant). `per_category`
    False computes the overall estimates only (faster)."""
    present = sorted(set(rows["ablation"].unique())) if len(rows) else []
    _check_sides("ablation", baseline, candidates, present, sweep)
    variants = variants_of(rows)
    parts = []
    for v in sorted(set(variants)):  # "" alone without variants
        mine = rows[variants == v]
        base = mine[mine["ablation"] == baseline]
        for c in candidates:
            name = f"{c} vs {baseline}" + (f" · {v}" if v else "")
            b_side, c_side = Side(group_label(baseline, v), sweep, baseline, v), Side(group_label(c, v), sweep, c, v)
            parts.append((b_side, base, c_side, mine[mine["ablation"] == c], name))
    return _study(parts, metrics, settings, per_category)


def _check_sides(kind: str, baseline: str, candidates: Sequence[str], present: Sequence[str], sweep: str) -> None:
    """ValueError unless the baseline and each candidate (ablations or variants: `kind`) have rows,
    the baseline is not also a candidate, and there is at least one candidate."""
    missing = [name for name in (baseline, *candidates) if name not in present]
    if missing:
        raise ValueError(f"{kind}(s) {missing} have no rows in {sweep or 'the results'}; present: {', '.join(present) or 'none'}")
    if baseline in candidates:
        raise ValueError(f"the baseline {kind} {baseline!r} is also a candidate; name each {kind} once")
    if not candidates:
        raise ValueError(f"name at least two {kind}s: the baseline first, then the candidates")


def compare_variants(
    rows: pd.DataFrame,
    baseline: str,
    candidates: Sequence[str],
    metrics: Sequence[str],
    settings: Settings = Settings(),
    sweep: str = "",
    ablations: Sequence[str] | None = None,
    per_category: bool = True,
) -> Study:
    """Each candidate recipe variant against the baseline variant, within the rows of one sweep:
    one comparison per candidate and ablation present in both (or those named), pairing on
    category and seed as compare_ablations does."""
    variants = variants_of(rows)
    _check_sides("variant", baseline, candidates, _ordered(variants[variants != ""]), sweep)
    base = rows[variants == baseline]
    parts = []
    for c in candidates:
        cand = rows[variants == c]
        shared = [a for a in _ordered(base["ablation"]) if a in set(cand["ablation"])]
        if ablations is not None:
            for side, frame in ((baseline, base), (c, cand)):
                lacking = [a for a in ablations if a not in set(frame["ablation"])]
                if lacking:
                    raise ValueError(
                        f"ablation(s) {lacking} have no rows of variant {side}; present: {', '.join(_ordered(frame['ablation']))}"
                    )
            shared = list(ablations)
        if not shared:
            raise ValueError(f"variants {baseline} and {c} share no ablation to compare")
        for a in shared:
            name = f"{c} vs {baseline}" + (f" · {a}" if len(shared) > 1 or a != "full" else "")
            parts.append(
                (
                    Side(baseline, sweep, a, baseline),
                    base[base["ablation"] == a],
                    Side(c, sweep, a, c),
                    cand[cand["ablation"] == a],
                    name,
                )
            )
    return _study(parts, metrics, settings, per_category)


def compare_sweeps(
    baseline_rows: pd.DataFrame,
    candidate_rows: pd.DataFrame,
    metrics: Sequence[str],
    settings: Settings = Settings(),
    baseline: str = BASELINE,
    candidate: str = CANDIDATE,
    ablations: Sequence[str] | None = None,
    per_category: bool = True,
) -> Study:
    """The candidate sweep against the baseline sweep, one comparison per ablation present in
    both (or those named)."""
    in_both = [a for a in _ordered(baseline_rows["ablation"]) if a in set(candidate_rows["ablation"])]
    if ablations is not None:
        missing = {
            BASELINE: [a for a in ablations if a not in set(baseline_rows["ablation"])],
            CANDIDATE: [a for a in ablations if a not in set(candidate_rows["ablation"])],
        }
        for side, names in missing.items():
            if names:
                sweep = baseline if side == BASELINE else candidate
                rows = baseline_rows if side == BASELINE else candidate_rows
                raise ValueError(
                    f"ablation(s) {names} have no rows in {sweep}; present: {', '.join(_ordered(rows['ablation'])) or 'none'}"
                )
        in_both = list(ablations)
    if not in_both:
        raise ValueError(
            f"{baseline} ({', '.join(_ordered(baseline_rows['ablation'])) or 'no rows'}) and {candidate} "
            f"({', '.join(_ordered(candidate_rows['ablation'])) or 'no rows'}) share no ablation to compare"
        )
    parts = []
    for a in in_both:
        base, cand = baseline_rows[baseline_rows["ablation"] == a], candidate_rows[candidate_rows["ablation"] == a]
        # Two sweeps with the same recipe variants: one comparison per variant, never pooled.
        names = sorted(set(variants_of(base)))
        for v in names if len(names) > 1 and names == sorted(set(variants_of(cand))) else [None]:
            b_part, c_part = (base, cand) if v is None else (base[variants_of(base) == v], cand[variants_of(cand) == v])
            group = a if v is None else group_label(a, v)
            name = f"{candidate} vs {baseline}" + (f" · {group}" if len(in_both) > 1 or group != "full" else "")
            parts.append((Side(baseline, baseline, a, v), b_part, Side(candidate, candidate, a, v), c_part, name))
    return _study(parts, metrics, settings, per_category)


def regressions(study: Study, margin: float, metrics: Sequence[str] | None = None) -> list[tuple[Comparison, Estimate]]:
    """Overall estimates where the candidate is significantly worse (verdict "worse") AND its
    mean difference is more than `margin` points below zero: what fails a regression gate."""
    names = set(metrics) if metrics is not None else set(study.metrics)
    out = []
    for comparison in study.comparisons:
        for e in comparison.estimates:
            if e.scope == OVERALL and e.metric in names and e.verdict == WORSE and e.diff < -margin:
                out.append((comparison, e))
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order; NaN entries stay NaN and are not
    counted in the family."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def wilcoxon_p(diffs: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value (scipy, zeros dropped as Wilcoxon proposed). 1.0
    when every difference is zero (no evidence either way), NaN without pairs."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        return math.nan
    if not np.any(d != 0):
        return 1.0
    from scipy import stats  # start-up time (about 1 s): the command lines import this module for its defaults

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def bootstrap_means(groups: Sequence[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` bootstrap replicates of the mean of group means: draw the groups (categories)
    with replacement, then within each drawn group its values (seeds) with replacement. With one
    group this is the plain bootstrap of its mean. Vectorised; returns (resamples,)."""
    counts = np.array([len(g) for g in groups])
    if len(groups) == 0 or counts.min() < 1:
        raise ValueError("bootstrap_means needs at least one group and a value in every group")
    padded = np.zeros((len(groups), counts.max()))
    for i, g in enumerate(groups):
        padded[i, : len(g)] = g
    out = np.empty(resamples)
    chunk = max(1, 4_000_000 // (len(groups) * counts.max()))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn = rng.integers(0, len(groups), size=(size, len(groups)))  # (B, C) group indices
        n = counts[drawn]
        picks = (rng.random((size, len(groups), counts.max())) * n[..., None]).astype(np.int64)
        values = padded[drawn[..., None], picks]  # (B, C, S)
        valid = np.arange(counts.max()) < n[..., None]
        out[start : start + size] = ((values * valid).sum(axis=2) / n).mean(axis=1)
    return out


def minimum_detectable_effect(n_pairs: int, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a paired test over `n_pairs` pairs with this spread
    detects with probability `power` at two-sided level `alpha` (noncentral t). Infinite when
    the Wilcoxon test cannot reach alpha with so few pairs; NaN when the spread is unknown."""
    if n_pairs < wilcoxon_min_pairs(alpha):
        return math.inf
    if not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    from scipy import optimize  # start-up time, as in wilcoxon_p

    high = sd
    while _t_power(n_pairs, high, sd, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda e: _t_power(n_pairs, e, sd, alpha) - power, 0.0, high, xtol=1e-10))


def pairs_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """The fewest pairs that detect a true mean difference `effect` with probability `power`
    (noncentral t, and never fewer than the Wilcoxon test needs to reach alpha at all). None
    when the spread is unknown."""
    least = wilcoxon_min_pairs(alpha)
    if not math.isfinite(sd):
        return None
    if sd == 0:
        return least
    if _t_power(least, effect, sd, alpha) >= power:
        return least
    low, high = least, least * 2
    while _t_power(high, effect, sd, alpha) < power:
        low, high = high, high * 2
    while high - low > 1:  # power grows with n: bisect for the first n that reaches it
        mid = (low + high) // 2
        low, high = (low, mid) if _t_power(mid, effect, sd, alpha) >= power else (mid, high)
    return high


def wilcoxon_min_pairs(alpha: float) -> int:
    """The fewest pairs with which the exact two-sided Wilcoxon test can give p < alpha: its
    smallest p-value is 2 / 2**n."""
    return max(1, math.floor(math.log2(2.0 / alpha)) + 1)


# --------------------------------------------------------------------------------------------
# Pairing
# --------------------------------------------------------------------------------------------


def _study(
    parts: list[tuple[Side, pd.DataFrame, Side, pd.DataFrame, str]],
    metrics: Sequence[str],
    settings: Settings,
    per_category: bool,
) -> Study:
    comparisons = []
    # Only the columns the statistics read: merging the store's 60-odd columns costs more than the rest.
    keep = ["job_id", "category", "seed", "ablation", "variant", "status", "error", "config_json", *PROTOCOL_FIELDS, *metrics]
    for base_side, base, cand_side, cand, name in parts:
        base, cand = base.assign(variant=variants_of(base)), cand.assign(variant=variants_of(cand))
        paired, unpaired, differs = pair_rows(base[keep], cand[keep], (base_side.label, cand_side.label))
        comparisons.append(
            Comparison(
                name=name,
                baseline=base_side,
                candidate=cand_side,
                differs=differs,
                pairs=tuple(
                    PairedJobs(str(category), int(seed), str(b), str(c))
                    for category, seed, b, c in zip(paired["category"], paired["seed"], paired["job_id_b"], paired["job_id_c"])
                ),
                unpaired=unpaired,
                estimates=tuple(_estimates(paired, metrics, settings, name, per_category)),
                protocol=_protocol_of(paired),
            )
        )
    protocols = [c.protocol for c in comparisons if c.protocol]
    shared = protocols[0] if protocols and all(p == protocols[0] for p in protocols) else {}
    return Study(tuple(_with_holm(comparisons, settings)), tuple(metrics), settings, shared)


def pair_rows(
    baseline: pd.DataFrame, candidate: pd.DataFrame, labels: tuple[str, str] = (BASELINE, CANDIDATE)
) -> tuple[pd.DataFrame, tuple[Unpaired, ...], tuple[str, ...]]:
    """Pair the ok rows of two sides on (category, seed, every experiment field that is not
    compared). What is compared: the fields that are constant within each side and differ
    between them (category and seed never are). Returns the pairs (one row each: `<column>_b`
    and `<column>_c` for both sides, plus category and seed), the rows left unpaired with the
    reason, and the compared fields as "field: baseline -> candidate".

    Raises ProtocolMismatch when two rows that pair were measured under different protocols,
    and ValueError when one side holds the same experiment twice."""
    base_id, cand_id = _identities(baseline), _identities(candidate)
    differs = _differing_fields(base_id, cand_id)
    left_out = set(differs) | set(PROTOCOL_FIELDS)
    base = baseline.assign(pair_key=[_key(i, left_out) for i in base_id])
    cand = candidate.assign(pair_key=[_key(i, left_out) for i in cand_id])
    for side, frame, label in ((BASELINE, base, labels[0]), (CANDIDATE, cand, labels[1])):
        repeated = frame[frame["pair_key"].duplicated(keep=False)]
        if len(repeated):
            jobs = ", ".join(repeated["job_id"].head(4))
            raise ValueError(
                f"the {side} ({label}) holds the same experiment more than once ({jobs}); "
                "they differ only in their evaluation protocol: compare sweeps measured one way"
            )
    merged = base.merge(cand, on="pair_key", how="outer", suffixes=("_b", "_c"), indicator="presence")
    unpaired = _unpaired(merged, labels)
    both = merged[(merged["presence"] == "both") & (merged["status_b"] == STATUS_OK) & (merged["status_c"] == STATUS_OK)]
    _check_protocols(both)
    paired = both.assign(category=both["category_b"], seed=both["seed_b"].astype(int))
    paired = paired.sort_values(["category", "seed"], kind="stable").reset_index(drop=True)
    unpaired.sort(key=lambda u: (u.side, u.category, u.seed, u.job_id))
    return paired, tuple(unpaired), tuple(f"{k}: {v[0]} -> {v[1]}" for k, v in differs.items())


def _unpaired(merged: pd.DataFrame, labels: tuple[str, str]) -> list[Unpaired]:
    """The rows of an outer merge of the two sides that do not make an ok pair, each with why."""
    unpaired: list[Unpaired] = []
    for r in merged.itertuples():
        b_ok = r.presence != "right_only" and r.status_b == STATUS_OK
        c_ok = r.presence != "left_only" and r.status_c == STATUS_OK
        if b_ok and c_ok:
            continue
        for side, present, ok, other_present, other_label, suffix in (
            (BASELINE, r.presence != "right_only", b_ok, r.presence != "left_only", labels[1], "_b"),
            (CANDIDATE, r.presence != "left_only", c_ok, r.presence != "right_only", labels[0], "_c"),
        ):
            if not present:
                continue
            if not ok:
                error = str(getattr(r, f"error{suffix}") or "").splitlines()
                reason = "failed" + (f": {error[0][:120]}" if error else "")
            elif other_present:
                reason = f"its partner in {other_label} failed"
            else:
                reason = f"no partner in {other_label}"
            unpaired.append(
                Unpaired(
                    side,
                    getattr(r, f"job_id{suffix}"),
                    getattr(r, f"category{suffix}"),
                    int(getattr(r, f"seed{suffix}")),
                    getattr(r, f"ablation{suffix}"),
                    reason,
                    str(getattr(r, f"variant{suffix}", "") or ""),
                )
            )
    return unpaired


def _identities(rows: pd.DataFrame) -> list[dict[str, str]]:
    """The experiment fields of each row (from its stored config), JSON-canonical values."""
    return [dict(_identity(text)) for text in rows["config_json"]]


@functools.lru_cache(maxsize=4096)
def _identity(config_json: str | None) -> tuple[tuple[str, str], ...]:
    """Cached: reports and simulations compare the same stored configs again and again."""
    fields = experiment_fields(json.loads(config_json)) if config_json else {}
    return tuple((k, json.dumps(v, sort_keys=True)) for k, v in fields.items())


def _differing_fields(base: list[dict[str, Any]], cand: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Fields with one value on each side, different between the sides: what is compared."""
    differs = {}
    names = sorted({k for i in base + cand for k in i} - set(_KEYS))
    for name in names:
        b = {i.get(name) for i in base}
        c = {i.get(name) for i in cand}
        if len(b) == 1 and len(c) == 1 and b != c:
            differs[name] = (_plain(next(iter(b))), _plain(next(iter(c))))
    return differs


def _plain(value: str | None) -> str:
    return "(unset)" if value is None else str(json.loads(value))


def _key(identity: Mapping[str, Any], left_out: set[str]) -> str:
    return json.dumps({k: v for k, v in identity.items() if k not in left_out}, sort_keys=True)


def _check_protocols(pairs: pd.DataFrame) -> None:
    for name in PROTOCOL_FIELDS:
        b, c = pairs[f"{name}_b"], pairs[f"{name}_c"]
        differ = ~((b == c) | (b.isna() & c.isna()))
        if differ.any():
            r = pairs[differ].iloc[0]
            raise ProtocolMismatch(
                f"protocol field {name!r} differs: {r[f'{name}_b']!r} in the baseline ({r['job_id_b']}) but "
                f"{r[f'{name}_c']!r} in the candidate ({r['job_id_c']}), and {int(differ.sum())} pair(s) like it; "
                "numbers measured under different protocols are not comparable: re-run one side with the other's protocol"
            )


def _protocol_of(pairs: pd.DataFrame) -> dict[str, Any]:
    if pairs.empty:
        return {}
    first = pairs.iloc[0]
    return {name: _scalar(first[f"{name}_b"]) for name in PROTOCOL_FIELDS}


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def _estimates(pairs: pd.DataFrame, metrics: Sequence[str], settings: Settings, name: str, per_category: bool) -> list[Estimate]:
    out = []
    categories = pairs["category"].to_numpy()
    for metric in metrics:
        base = pairs[f"{metric}_b"].to_numpy(dtype=float) * 100.0
        cand = pairs[f"{metric}_c"].to_numpy(dtype=float) * 100.0
        usable = np.isfinite(base) & np.isfinite(cand)
        groups = {
            c: (base[usable & (categories == c)], cand[usable & (categories == c)]) for c in dict.fromkeys(categories[usable])
        }
        for category, group in groups.items() if per_category else ():
            out.append(_estimate(metric, category, [group], settings, name))
        out.append(_estimate(metric, OVERALL, list(groups.values()), settings, name))
    return out


def _estimate(metric: str, scope: str, groups: list[tuple[np.ndarray, np.ndarray]], settings: Settings, name: str) -> Estimate:
    """The estimate of one scope from its categories' (baseline, candidate) values in points."""
    nan = math.nan
    diffs = [c - b for b, c in groups]
    flat = np.concatenate(diffs) if diffs else np.zeros(0)
    n = len(flat)
    if n == 0:
        return Estimate(metric, scope, 0, 0, nan, nan, nan, nan, nan, nan, nan, NO_PAIRS, nan, nan, None)
    # Means of category means, as the summary's average row (equal to the plain mean when every
    # category has the same number of seeds).
    base_mean = float(np.mean([b.mean() for b, _ in groups]))
    cand_mean = float(np.mean([c.mean() for _, c in groups]))
    diff = float(np.mean([d.mean() for d in diffs]))
    ci_low = ci_high = nan
    if n > 1:
        rng = np.random.default_rng([settings.seed, zlib.crc32(f"{name}|{metric}|{scope}".encode())])
        replicates = bootstrap_means(diffs, settings.resamples, rng)
        tail = 100.0 * (1.0 - settings.confidence) / 2.0
        ci_low, ci_high = (float(v) for v in np.percentile(replicates, [tail, 100.0 - tail]))
    sd = float(np.std(flat, ddof=1)) if n > 1 else nan
    seeds = None
    if settings.effect is not None:
        needed = pairs_needed(settings.effect, sd, settings.alpha, settings.power)
        seeds = None if needed is None else math.ceil(needed / len(groups))
    return Estimate(
        metric=metric,
        scope=scope,
        n_pairs=n,
        n_categories=len(groups),
        baseline_mean=base_mean,
        candidate_mean=cand_mean,
        diff=diff,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=wilcoxon_p(flat),
        p_holm=nan,
        verdict=NO_DIFFERENCE,
        sd_diff=sd,
        mde=minimum_detectable_effect(n, sd, settings.alpha, settings.power),
        seeds_needed=seeds,
    )


def _with_holm(comparisons: list[Comparison], settings: Settings) -> list[Comparison]:
    """Adjust the p-values of each scope over every metric x comparison, then give verdicts."""
    flat = [(i, k, e) for i, c in enumerate(comparisons) for k, e in enumerate(c.estimates)]
    adjusted: dict[tuple[int, int], float] = {}
    for scope in dict.fromkeys(e.scope for _, _, e in flat):
        family = [(i, k, e) for i, k, e in flat if e.scope == scope]
        for (i, k, _), p in zip(family, holm([e.p_value for _, _, e in family])):
            adjusted[(i, k)] = p
    out = []
    for i, c in enumerate(comparisons):
        estimates = []
        for k, e in enumerate(c.estimates):
            p = adjusted[(i, k)]
            estimates.append(dataclasses.replace(e, p_holm=p, verdict=_verdict(e, p, settings.alpha)))
        out.append(dataclasses.replace(c, estimates=tuple(estimates)))
    return out


def _verdict(e: Estimate, p_holm: float, alpha: float) -> str:
    if e.n_pairs == 0:
        return NO_PAIRS
    if not p_holm < alpha:
        return NO_DIFFERENCE
    if e.ci_low > 0:
        return BETTER
    if e.ci_high < 0:
        return WORSE
    return NO_DIFFERENCE


def _t_power(n: float, effect: float, sd: float, alpha: float) -> float:
    """Power of the two-sided one-sample t-test on n paired differences."""
    from scipy import stats  # start-up time, as in wilcoxon_p

    df = n - 1
    critical = stats.t.ppf(1.0 - alpha / 2.0, df)
    shift = effect * math.sqrt(n) / sd
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def _ordered(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(values))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
