"""Verdicts on the metrics users really have: accuracies that are k/N of a finite split, stored as float32.

The hand cases are the ones a new user met (issue: "Verdicts that survive real metrics"): +48/270 on every seed
read as "better (ttest)" from 2 seeds with p = 2.7e-08; −2/270 twice read as "worse"; identical runs (A/A) left
"undecided". The simulations put noise on the count scale (whole examples) and check the false-positive rate of
the adaptive design over 2,000 studies, and that it breaks without the resolution rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from dashboards import resolution, sequential, verdicts
from platform.records import METRIC_VAL_ACC, METRIC_VAL_LOSS

N = 270
ALPHA, EFFECT = 0.05, 0.02
STUDIES = 2000


def f32(count: int, n: int = N) -> float:
    """An accuracy of ``count`` of ``n`` examples as the stores hold it: a float32 number read back as float."""
    return float(np.float32(count / n))


def _decide(counts: dict[str, list[int]], examples: int | None = N, **kwargs: object) -> dict[str, verdicts.Verdict]:
    values = {point: {seed: f32(c) for seed, c in enumerate(row)} for point, row in counts.items()}
    options = {"effect": EFFECT, "min_seeds": 2, "max_seeds": 4, "examples": examples, **kwargs}
    return verdicts.decide(values, "ref", **options)  # type: ignore[arg-type]


def test_snap_reads_float32_fractions_as_exact_k_over_n() -> None:
    values = {"a": {0: f32(48), 1: f32(118)}, "b": {0: f32(0), 1: f32(70)}}
    snapped, res = resolution.snap(values, N)
    assert res.examples == N and res.step == 1 / N and res.label() == "1/270"
    assert snapped["a"][1] * N == 118 and snapped["b"][1] * N == 70  # exact k/N
    assert abs((snapped["a"][1] - snapped["b"][1]) - (snapped["a"][0] - snapped["b"][0])) < 1e-15
    assert abs((values["a"][1] - values["b"][1]) - (values["a"][0] - values["b"][0])) > 1e-9  # float32 gave
    # values that are not k/N (a subset, a mean over ranks) keep float32's resolution only
    off, res = resolution.snap({"a": {0: f32(48, 271), 1: f32(50, 271)}}, N)
    assert res.examples is None and res.step == pytest.approx(resolution.FLOAT32_RESOLUTION * f32(50, 271))
    assert off["a"][0] == f32(48, 271)
    assert resolution.examples_behind(METRIC_VAL_ACC, {"val": 270, "test": 300}) == 270
    assert resolution.examples_behind("test/acc_top5", {"val": 270, "test": 300}) == 300
    assert resolution.examples_behind(METRIC_VAL_LOSS, {"val": 270}) is None


@pytest.mark.parametrize("examples", [N, None])
@pytest.mark.parametrize("seeds", [2, 3, 4])
def test_the_same_gain_on_every_seed_is_not_better_from_few_seeds(seeds: int, examples: int | None) -> None:
    """+48 of 270 digits on each seed: float32 made the differences unequal in the 8th digit (t = 2.4e7)."""
    ref = [60 + 10 * s for s in range(seeds)]
    result = _decide({"ref": ref, "pt": [c + 48 for c in ref]}, examples)["pt"]
    assert result.verdict == "undecided" and result.test is None
    assert result.p_value == pytest.approx(2.0 ** (1 - seeds))  # the exact sign test, not t
    assert "same difference on every seed" in result.note and "sign test" in result.note
    assert result.delta == pytest.approx(48 / N, abs=1e-7)


def test_two_examples_lost_on_both_seeds_is_not_worse() -> None:
    """The README's window study: window_size=3 lost exactly 2 of 270 digits on both seeds."""
    result = _decide({"ref": [200, 201], "pt": [198, 199]})["pt"]
    assert result.verdict == "undecided" and result.delta == pytest.approx(-2 / N)
    assert result.ci_high - result.ci_low > 0.01  # the interval is not a zero-width point at −0.0074


@pytest.mark.parametrize("seeds", [2, 4])
def test_identical_runs_are_equivalent_not_undecided(seeds: int) -> None:
    """An A/A comparison: the same value on every seed."""
    ref = [150 + 7 * s for s in range(seeds)]
    result = _decide({"ref": ref, "pt": list(ref)})["pt"]
    assert result.verdict == "equivalent" and result.test == "identical" and result.done
    assert result.n == 2  # decided at the first look
    assert result.p_value == 1.0 and "identical on every seed" in result.note


def test_a_resolved_spread_is_tested_and_a_planted_large_difference_is_decided() -> None:
    ref = [150, 160, 155]
    result = _decide({"ref": ref, "pt": [c + d for c, d in zip(ref, [40, 43, 41], strict=True)]})["pt"]
    assert result.verdict == "better" and result.test == "ttest"
    worse = _decide({"ref": ref, "pt": [c - d for c, d in zip(ref, [40, 43, 41], strict=True)]})["pt"]
    assert worse.verdict == "worse"


def test_equivalence_by_tost_within_effect_on_quantised_values() -> None:
    ref = [150, 160, 155, 158]
    result = _decide({"ref": ref, "pt": [c + d for c, d in zip(ref, [1, -1, 0, 1], strict=True)]})["pt"]
    assert result.verdict == "equivalent" and result.test == "tost"


def _quantised_null(seed: int, comparisons: int, sigma: float, max_seeds: int) -> np.ndarray:
    """Counts of correct examples: (studies, reference + comparisons, seeds); noise on the count scale."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.9, (STUDIES, 1, 1)) * N
    seed_effect = rng.normal(0.0, 5.0, (STUDIES, 1, max_seeds))  # shared by every point: pairing removes it
    noise = rng.normal(0.0, sigma, (STUDIES, comparisons + 1, max_seeds))
    return np.clip(np.rint(base + seed_effect + noise), 0, N)


def _false_positive_rate(counts: np.ndarray, min_seeds: int, max_seeds: int, *, resolved: bool) -> float:
    studies, points, width = counts.shape
    bounds = sequential.boundaries(min_seeds, max_seeds, ALPHA, points - 1)
    if resolved:  # what decide() does: k/N values, ties at 1/N
        diffs, step = (counts[:, 1:] - counts[:, :1]) / N, 1.0 / N
    else:  # the former rule: float32 values, ties only at float64 precision
        stored = (counts / N).astype(np.float32).astype(np.float64)
        diffs, step = stored[:, 1:] - stored[:, :1], 0.0
    result = sequential.sequential_decisions(diffs, np.full((studies, points - 1), width), effect=EFFECT, sign=1,
                                             bounds=bounds, resolution=step)
    return float(np.isin(result.verdict, [sequential.BETTER, sequential.WORSE]).any(axis=1).mean())


@pytest.mark.parametrize(("comparisons", "min_seeds", "max_seeds"), [(4, 2, 4), (1, 2, 4), (4, 2, 6), (1, 3, 10)])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 4.0])
def test_quantised_null_false_positive_rate_within_bound(comparisons: int, min_seeds: int, max_seeds: int,
                                                         sigma: float) -> None:
    counts = _quantised_null(31, comparisons, sigma, max_seeds)
    assert _false_positive_rate(counts, min_seeds, max_seeds, resolved=True) <= ALPHA + 0.01


def test_without_the_resolution_rule_the_quantised_null_breaks_the_bound() -> None:
    counts = _quantised_null(31, 4, 1.0, 4)
    assert _false_positive_rate(counts, 2, 4, resolved=False) > ALPHA + 0.05


def test_decide_on_float32_values_matches_the_vectorised_replay() -> None:
    """The simulations above run ``sequential_decisions`` on exact k/N differences; decide() gets float32 values."""
    counts = _quantised_null(32, 2, 1.0, 4)[:60]
    counts[:, 1] += 6  # a planted difference of 6 examples on the first comparison
    bounds = sequential.boundaries(2, 4, ALPHA, 2)
    replay = sequential.sequential_decisions((counts[:, 1:] - counts[:, :1]) / N, np.full((60, 2), 4),
                                             effect=EFFECT, sign=1, bounds=bounds, resolution=1.0 / N)
    for study in range(60):
        rows = {name: [int(c) for c in counts[study, j]] for j, name in enumerate(("ref", "a", "b"))}
        result = _decide(rows)
        assert [v.verdict for v in result.values()] == [verdicts.CODE_NAMES[int(c)] for c in replay.verdict[study]]
        assert [v.n for v in result.values()] == replay.n[study].tolist()
