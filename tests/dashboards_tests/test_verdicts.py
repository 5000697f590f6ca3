"""Adaptive-seed verdicts as pure functions: simulated studies (false positives, power, seeds used) and hand cases.

Simulated design points: value(point, seed) = δ_point + seed effect (shared by all points; pairing removes it)
+ noise, with σ_diff = 1 the standard deviation of a paired difference. "False positive": a better/worse verdict
in a study where every true difference is 0. The simulations run the same vectorised code that :func:`decide`
calls (``sequential_decisions``); ``test_study_loop_matches_replay`` checks that the decide/next_seeds loop gives
the same verdicts and seed counts as that one-shot replay.
"""

from __future__ import annotations

import numpy as np
import pytest

from dashboards import sequential, stats, verdicts
from platform.records import METRIC_VAL_ACC

ALPHA, EFFECT, SIGMA, MIN, MAX = 0.05, 1.0, 1.0, 3, 10
STUDIES = 2000


def simulate(seed: int, deltas: list[float], studies: int = STUDIES, max_seeds: int = MAX) -> np.ndarray:
    """Paired differences (studies, comparisons, seeds) of simulated studies; the reference has true value 0."""
    rng = np.random.default_rng(seed)
    seed_effect = rng.normal(0.0, 5.0 * SIGMA, (studies, 1, max_seeds))
    noise = rng.normal(0.0, SIGMA / np.sqrt(2.0), (studies, len(deltas) + 1, max_seeds))
    values = np.asarray([0.0, *deltas])[None, :, None] + seed_effect + noise
    return values[:, 1:] - values[:, :1]  # point − reference, seed by seed


def run(diffs: np.ndarray, bounds: sequential.Boundaries | None = None, effect: float = EFFECT
        ) -> sequential.Decisions:
    studies, m, width = diffs.shape
    bounds = bounds or sequential.boundaries(MIN, MAX, ALPHA, m)
    return sequential.sequential_decisions(diffs, np.full((studies, m), width), effect=effect, sign=1, bounds=bounds)


def false_positive_rate(decisions: sequential.Decisions) -> float:
    wrong = np.isin(decisions.verdict, [sequential.BETTER, sequential.WORSE])
    return float(wrong.any(axis=1).mean())


@pytest.mark.parametrize("comparisons", [1, 4])
def test_null_adaptive_false_positive_rate_within_bound(comparisons: int) -> None:
    decisions = run(simulate(11, [0.0] * comparisons))
    assert false_positive_rate(decisions) <= ALPHA + 0.01
    # δ = 0: no comparison is called better or worse above the nominal rate; the rest are equivalent or undecided
    per_comparison = np.isin(decisions.verdict, [sequential.BETTER, sequential.WORSE]).mean(axis=0)
    assert np.all(per_comparison <= ALPHA)
    assert (decisions.verdict == sequential.EQUIVALENT).mean() > 0.3  # equivalence is reachable within max seeds


def test_uncorrected_repeated_looks_would_break_the_bound() -> None:
    """The same null data tested at α on every look (no spending): the bound above would fail."""
    looks = tuple(range(MIN, MAX + 1))
    naive = sequential.Boundaries(looks, np.full((1, len(looks)), ALPHA), np.full(len(looks), ALPHA), ALPHA, "none")
    assert false_positive_rate(run(simulate(11, [0.0]), naive)) > ALPHA + 0.05


def test_planted_effect_decided_better_with_few_seeds() -> None:
    delta = 2.0 * SIGMA  # δ = 2·σ_diff > effect
    single = run(simulate(12, [delta]))
    assert (single.verdict == sequential.BETTER).mean() >= 0.8
    assert single.n.mean() <= 0.6 * MAX
    # the window study's shape: 4 comparisons, one planted; Holm makes it pay in seeds, not in verdicts
    window = run(simulate(13, [delta, 0.0, 0.0, 0.0]))
    assert (window.verdict[:, 0] == sequential.BETTER).mean() >= 0.8
    assert window.n[:, 0].mean() < MAX


def test_equivalence_claims_stay_below_alpha_at_the_margin() -> None:
    """True Δ exactly +effect (not equivalent): sequential TOST says "equivalent" at most α of the time."""
    decisions = run(simulate(14, [EFFECT]))
    assert (decisions.verdict == sequential.EQUIVALENT).mean() <= ALPHA + 0.01


@pytest.mark.parametrize("spending", sequential.SPENDING)
def test_boundaries_spend_alpha_on_fresh_paths(spending: str) -> None:
    """Calibrated t boundaries give the sequential test size α on paths independent of the calibration."""
    bounds = sequential.boundaries(MIN, MAX, ALPHA, 1, spending)
    rng = np.random.default_rng(99)
    t = sequential.t_statistics(rng.standard_normal((200_000, MAX)), np.arange(MIN, MAX + 1), 0.0)
    from scipy import stats as sps

    p = 2.0 * sps.t.sf(np.abs(t), np.arange(MIN, MAX + 1) - 1)
    assert (p < bounds.difference[0]).any(axis=1).mean() == pytest.approx(ALPHA, abs=0.003)
    first = sequential.spend(spending, np.array([MIN / MAX]), ALPHA)[0]
    assert bounds.difference[0, 0] == pytest.approx(first)  # the first look is exact
    assert np.all(bounds.difference[0] < ALPHA)


def test_boundaries_shrink_with_the_holm_level_and_a_fixed_design_is_a_plain_test() -> None:
    bounds = sequential.boundaries(MIN, MAX, ALPHA, 4)
    assert np.all(np.diff(bounds.difference, axis=0) < 0)  # α / 1 > α / 2 > … at every look
    fixed = sequential.boundaries(5, 5, ALPHA, 3)
    assert fixed.difference[:, 0] == pytest.approx([ALPHA, ALPHA / 2, ALPHA / 3])
    assert fixed.equivalence == pytest.approx([ALPHA])
    with pytest.raises(ValueError, match="min_seeds"):
        sequential.boundaries(1, 5, ALPHA, 1)
    with pytest.raises(ValueError, match="spending"):
        sequential.boundaries(3, 5, ALPHA, 1, "linear")


def _study(values: dict[str, dict[int, float]], **kwargs: object) -> dict[str, verdicts.Verdict]:
    options = {"effect": 0.01, "min_seeds": MIN, "max_seeds": MAX, **kwargs}
    return verdicts.decide(values, "ref", **options)  # type: ignore[arg-type]


def test_fixed_design_matches_paired_t_holm_and_tost() -> None:
    from scipy import stats as sps

    ref = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.79, 4: 0.80}
    a = {s: v + d for (s, v), d in zip(ref.items(), [0.030, 0.034, 0.029, 0.036, 0.031], strict=True)}
    b = {s: v + d for (s, v), d in zip(ref.items(), [0.001, -0.002, 0.002, 0.000, -0.001], strict=True)}
    result = _study({"ref": ref, "a": a, "b": b}, min_seeds=5, max_seeds=5, bounds=(0.0, 1.0))
    p_a = sps.ttest_rel(list(a.values()), list(ref.values())).pvalue
    p_b = sps.ttest_rel(list(b.values()), list(ref.values())).pvalue
    assert result["a"].p_value == pytest.approx(p_a) and result["b"].p_value == pytest.approx(p_b)
    assert result["a"].verdict == "better" and result["a"].test == "ttest" and result["a"].n == 5
    assert result["a"].p_boundary == pytest.approx(ALPHA / 2)  # Holm's first step with 2 comparisons
    diffs = np.array(list(b.values())) - np.array(list(ref.values()))
    se = diffs.std(ddof=1) / np.sqrt(5)
    tost = max(sps.t.sf((diffs.mean() + 0.01) / se, 4), sps.t.sf((0.01 - diffs.mean()) / se, 4))
    assert result["b"].verdict == "equivalent" and result["b"].test == "tost"
    assert result["b"].p_equivalence == pytest.approx(tost)
    low, high = stats.describe(diffs).ci_low, stats.describe(diffs).ci_high
    assert (result["b"].ci_low, result["b"].ci_high) == (pytest.approx(low), pytest.approx(high))
    assert result["b"].done and result["b"].seeds_needed is not None
    # a third comparison left out (pruned) but counted in the family: Holm's first step is α / 3
    kept = _study({"ref": ref, "a": a, "b": b}, min_seeds=5, max_seeds=5, family=3)
    assert kept["a"].p_boundary == pytest.approx(ALPHA / 3) and kept["a"].verdict == "better"
    with pytest.raises(ValueError, match="family"):
        _study({"ref": ref, "a": a, "b": b}, family=1)


def test_direction_pairing_and_small_samples() -> None:
    ref = {0: 0.50, 1: 0.70, 2: 0.60, 3: 0.40}
    lower = {s: v - 0.1 - 0.001 * s for s, v in ref.items()}
    up = _study({"ref": ref, "a": lower})
    down = _study({"ref": ref, "a": lower}, direction="minimize")
    assert (up["a"].verdict, down["a"].verdict) == ("worse", "better")  # a lower loss is better
    assert up["a"].delta == pytest.approx(-0.101) and up["a"].n == 3  # decided at the first look
    single = _study({"ref": ref, "a": {0: 0.5, 9: 0.1}})  # seed 9 has no partner: left out
    assert single["a"].n == 1 and single["a"].verdict == "undecided" and not single["a"].done
    assert single["a"].seeds_needed is None and single["a"].p_value is None and "first look" in single["a"].note
    assert verdicts.seeds_label(single["a"].seeds_needed) == "—"


def test_interval_of_an_accuracy_difference_stays_in_range() -> None:
    ref = {0: 0.0, 1: 0.0, 2: 0.0}
    wide = {0: 1.0, 1: 0.5, 2: 1.0}  # unclipped paired interval ≈ [0.12, 1.55]
    result = _study({"ref": ref, "a": wide}, bounds=stats.metric_bounds(METRIC_VAL_ACC))
    assert result["a"].ci_high == 1.0 and 0.0 < result["a"].ci_low < 1.0
    assert _study({"ref": ref, "a": wide})["a"].ci_high > 1.5


def test_identical_differences_use_the_sign_test() -> None:
    ref = {s: 0.5 + 0.01 * s for s in range(10)}
    shifted = {s: v + 0.2 for s, v in ref.items()}
    early = _study({"ref": ref, "a": {s: shifted[s] for s in range(3)}})
    assert early["a"].verdict == "undecided" and early["a"].p_value == pytest.approx(0.25)  # 2^(1−3)
    late = _study({"ref": ref, "a": shifted})
    assert late["a"].verdict == "better" and late["a"].test == "sign"
    thresholds = sequential.boundaries(MIN, MAX, ALPHA, 1).difference[0]
    first = next(n for n in range(MIN, MAX + 1) if 2.0 ** (1 - n) < thresholds[n - MIN])  # the sign test crosses
    assert late["a"].n == first and late["a"].p_value == pytest.approx(2.0 ** (1 - first))
    same = _study({"ref": ref, "a": dict(ref)})
    assert same["a"].p_value == 1.0 and same["a"].verdict in ("equivalent", "undecided")


def test_undecided_at_max_seeds_is_done() -> None:
    rng = np.random.default_rng(5)
    ref = {s: float(rng.normal()) for s in range(MAX)}
    noisy = {s: v + float(rng.normal(0.0, 1.0)) for s, v in ref.items()}
    result = _study({"ref": ref, "a": noisy}, effect=0.01)
    assert result["a"].verdict == "undecided" and result["a"].done and "max seeds" in result["a"].note
    assert result["a"].n == MAX and result["a"].seeds_needed is not None and result["a"].seeds_needed > MAX
    assert verdicts.next_seeds(result, {"ref": ref, "a": noisy}) == {}


def test_next_seeds_pairs_the_new_seed_and_skips_tried_ones() -> None:
    ref = {0: 0.5, 1: 0.7, 2: 0.6}
    values = {"ref": ref, "a": {0: 0.52, 1: 0.69, 2: 0.63}, "b": {0: 0.9, 1: 1.12, 2: 0.99}}
    result = verdicts.decide(values, "ref", effect=0.001, min_seeds=MIN, max_seeds=MAX)
    assert result["a"].verdict == "undecided" and result["b"].done
    assert verdicts.next_seeds(result, values) == {"ref": 3, "a": 3}
    assert verdicts.next_seeds(result, values, tried={"a": [3]}) == {"ref": 4, "a": 4}  # seed 3 failed on a
    # one reference per slice of a multi-factor grid; a slice's new seed follows its own seeds
    sliced = values | {"ref2": {0: 0.5, 1: 0.7, 2: 0.6, 3: 0.6}, "c": {0: 0.52, 1: 0.69, 2: 0.63, 3: 0.61}}
    per_slice = verdicts.decide(sliced, {"a": "ref", "b": "ref", "c": "ref2", "ref": None}, effect=0.001,
                                min_seeds=MIN, max_seeds=MAX)
    assert [(v.point, v.reference) for v in per_slice.values()] == [("a", "ref"), ("b", "ref"), ("c", "ref2")]
    assert verdicts.next_seeds(per_slice, sliced) == {"ref": 3, "a": 3, "ref2": 4, "c": 4}


def test_study_loop_matches_replay() -> None:
    """decide → next_seeds rounds, as the study loop will run them, equal the one-shot replay; each seed once."""
    diffs = simulate(21, [1.0, 0.0, 2.0], studies=15)
    for study in diffs:
        truth = {"ref": dict.fromkeys(range(MAX), 0.0)} | {f"p{j}": dict(enumerate(row)) for j, row in
                                                           enumerate(study)}
        have = {point: {s: truth[point][s] for s in range(MIN)} for point in truth}
        while True:
            result = verdicts.decide(have, "ref", effect=EFFECT, min_seeds=MIN, max_seeds=MAX)
            more = verdicts.next_seeds(result, have)
            if not more:
                break
            for point, seed in more.items():
                assert seed not in have[point] and seed < MAX
                have[point][seed] = truth[point][seed]
        replay = run(study[None])
        assert [v.verdict for v in result.values()] == [verdicts.CODE_NAMES[int(c)] for c in replay.verdict[0]]
        assert [v.n for v in result.values()] == replay.n[0].tolist()
        assert [len(have[p]) for p in result] == replay.n[0].tolist()


def test_seeds_needed_from_noncentral_t() -> None:
    # G*Power, one-sample t, two-tailed α = 0.05, power 0.8: d = 1 → 10, d = 0.5 → 34
    assert verdicts.seeds_for_difference(1.0, 1.0, 0.05) == 10
    assert verdicts.seeds_for_difference(2.0, 1.0, 0.05) == 34
    n = verdicts.seeds_for_equivalence(1.0, 1.0, 0.05)
    rng = np.random.default_rng(3)
    d = rng.standard_normal((40_000, n))
    from scipy import stats as sps

    se = d.std(axis=1, ddof=1) / np.sqrt(n)
    shown = np.abs(d.mean(axis=1)) + sps.t.isf(0.05, n - 1) * se < 1.0  # TOST at true Δ = 0
    assert shown.mean() >= 0.8
    assert verdicts.seeds_needed([0.0, 1.0], 0.5, comparisons=4) == max(
        verdicts.seeds_for_difference(np.std([0.0, 1.0], ddof=1), 0.5, 0.05 / 4),
        verdicts.seeds_for_equivalence(np.std([0.0, 1.0], ddof=1), 0.5, 0.05))
    assert verdicts.seeds_for_difference(1.0, 0.01, 0.05) == verdicts.SEEDS_CAP + 1
    assert verdicts.seeds_label(verdicts.SEEDS_CAP + 1) == "> 100"
    assert verdicts.seeds_needed([0.3], 0.5) is None and verdicts.seeds_needed([0.3, 0.3], 0.5) is None
    assert verdicts.seeds_needed([0.1 + 0.3, 0.4, 0.4], 0.5) is None  # zero spread up to rounding


def test_bad_arguments_name_the_argument() -> None:
    values = {"ref": {0: 1.0}, "a": {0: 1.0}}
    for kwargs, name in [({"effect": 0.0}, "effect"), ({"alpha": 1.5}, "alpha"), ({"direction": "up"}, "direction"),
                         ({"min_seeds": 5, "max_seeds": 3}, "min_seeds"), ({"spending": "x"}, "spending")]:
        with pytest.raises(ValueError, match=name):
            _study(values, **kwargs)
    with pytest.raises(ValueError, match="reference"):
        verdicts.decide(values, "nope", effect=0.1, min_seeds=3, max_seeds=5)


def test_holm_steps_down_after_a_rejection() -> None:
    """Two comparisons at one look (n = 5): a rejects at α/2, so b is tested at α, not α/2 (Holm's step-down).

    A single pass at α/2 would leave b (p ≈ 0.034) undecided; the step-down says better.
    """
    ref = {s: 0.80 + 0.01 * s for s in range(5)}
    a = {s: v + 0.2 + 0.001 * s for s, v in ref.items()}  # p ≈ 0
    b = {s: v + d for (s, v), d in zip(ref.items(), [0.010, 0.020, 0.031, 0.001, 0.030], strict=True)}
    result = _study({"ref": ref, "a": a, "b": b}, min_seeds=5, max_seeds=5, effect=0.001)
    assert result["a"].verdict == "better" and result["a"].p_boundary == pytest.approx(ALPHA / 2)
    assert ALPHA / 2 < result["b"].p_value < ALPHA
    assert result["b"].p_value == pytest.approx(0.0335, abs=5e-4)
    assert result["b"].verdict == "better" and result["b"].p_boundary == pytest.approx(ALPHA)
    # without a's rejection b stays at α/2: undecided (a made equal to the reference, then identical)
    alone = _study({"ref": ref, "a": dict(ref), "b": b}, min_seeds=5, max_seeds=5, effect=0.001)
    assert alone["b"].verdict == "undecided" and alone["b"].p_boundary == pytest.approx(ALPHA / 2)
