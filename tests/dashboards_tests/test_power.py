"""What a seeds budget can decide: the simulated power of the sequential design, checked against the closed form
of a fixed design (one look: a plain paired t-test, whose power is the noncentral t's)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from dashboards import power


def _t_power(n: int, delta_sigma: float, alpha: float) -> float:
    """P(two-sided paired t-test at ``alpha`` rejects with Δ > 0) for a true Δ = delta_sigma·σ, n pairs."""
    critical = sps.t.isf(alpha / 2.0, n - 1)
    return float(sps.nct.sf(critical, n - 1, delta_sigma * np.sqrt(n)))


@pytest.mark.parametrize("n", [3, 5])
def test_fixed_design_power_matches_the_noncentral_t(n: int) -> None:
    found = power.design_power(min_seeds=n, max_seeds=n, comparisons=1, effect=0.02)
    assert found.power_2sigma == pytest.approx(_t_power(n, 2.0, 0.05), abs=0.025)
    assert found.mdd_sigma is not None
    assert _t_power(n, found.mdd_sigma, 0.05) == pytest.approx(power.POWER, abs=0.03)


def test_the_embedded_budget_decides_a_two_sigma_difference_about_half_the_time() -> None:
    one = power.design_power(min_seeds=2, max_seeds=4, comparisons=1, effect=0.02)
    assert 0.35 < one.power_2sigma < 0.6
    four = power.design_power(min_seeds=2, max_seeds=4, comparisons=4, effect=0.02)
    assert four.power_2sigma < one.power_2sigma  # Holm's α/4
    more = power.design_power(min_seeds=2, max_seeds=8, comparisons=4, effect=0.02)
    assert more.power_2sigma > four.power_2sigma and more.mdd_sigma < four.mdd_sigma
    # the sign test (every difference equal) needs 2^(1−n) below α/4 at some look: never within 4 seeds
    assert four.sign_seeds is None and one.ttest_seeds == 2
    assert power.design_power(min_seeds=6, max_seeds=6, comparisons=1, effect=0.02).sign_seeds == 6


def test_known_sigma_gives_the_smallest_difference_in_metric_units() -> None:
    found = power.design_power(min_seeds=3, max_seeds=6, comparisons=2, effect=0.02, sd=0.01,
                               sd_source="the study's trials (12 paired seeds)")
    assert found.mdd == pytest.approx(found.mdd_sigma * 0.01)
    assert found.power_at_effect == pytest.approx(found.power_2sigma)  # effect = 2σ here
    text = " ".join(found.lines())
    assert "σ = 0.01 from the study's trials" in text and "80 % power" in text
    sd, pairs = power.paired_sd([[0.0, 0.02], [0.01, 0.01, 0.04]])
    assert pairs == 5 and sd == pytest.approx(np.sqrt((0.0002 + 0.0006) / 3))
    with pytest.raises(ValueError, match="sd"):
        power.design_power(min_seeds=2, max_seeds=4, comparisons=1, effect=0.02, sd=-1.0)


def test_power_on_whole_examples_depends_on_sigma_in_examples() -> None:
    """Below one example (N = 50, effect 0.02, σ = effect/2 = 0.5 examples) runs are mostly identical or differ by
    the same count: the 2σ power of 2–6 seeds with 4 comparisons falls well below the continuous figure; at
    N = 270 (σ = 2.7 examples) it is close to it (benchmarks/results/decision_figures.md has the table)."""
    continuous = power.design_power(min_seeds=2, max_seeds=6, comparisons=4, effect=0.02)
    small = power.design_power(min_seeds=2, max_seeds=6, comparisons=4, effect=0.02, examples=50)
    digits = power.design_power(min_seeds=2, max_seeds=6, comparisons=4, effect=0.02, examples=270)
    assert small.power_2sigma < continuous.power_2sigma - 0.15
    assert abs(digits.power_2sigma - continuous.power_2sigma) < 0.05
    assert "N = 50 examples" in small.lines()[0] and "(0.5 examples)" in small.lines()[1]
    with pytest.raises(ValueError, match="examples"):
        power.design_power(min_seeds=2, max_seeds=6, comparisons=1, effect=0.02, examples=0)
