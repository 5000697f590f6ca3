"""dashboards.stats against hand computations: t intervals, paired tests, Holm, verdicts and their edge cases."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from dashboards import stats
from platform.records import METRIC_VAL_ACC, METRIC_VAL_LOSS


def test_describe_matches_hand_computation() -> None:
    values = [0.80, 0.82, 0.79, 0.83]
    summary = stats.describe(values)
    mean = sum(values) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    half = 3.182446305284263 * std / 2  # t_{0.975, 3} · s / √4
    assert summary.n == 4
    assert summary.mean == pytest.approx(0.81)
    assert summary.std == pytest.approx(std) and std == pytest.approx(0.018257418583505554)
    assert (summary.ci_low, summary.ci_high) == (pytest.approx(mean - half), pytest.approx(mean + half))


def test_describe_small_samples() -> None:
    assert stats.describe([]) == stats.Summary(0, None, None, None, None)
    assert stats.describe([0.5]) == stats.Summary(1, 0.5, None, None, None)


def test_paired_ttest_pairs_by_seed_and_matches_hand_t() -> None:
    level = {0: 0.91, 1: 0.88, 2: 0.93, 5: 0.5}  # seed 5 has no partner: ignored
    reference = {2: 0.90, 0: 0.85, 1: 0.86, 3: 0.1}
    result = stats.paired_test(level, reference)
    diffs = [0.06, 0.02, 0.03]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    t = mean / (sd / math.sqrt(3))
    assert result.n_pairs == 3 and result.test == "ttest"
    assert result.mean_diff == pytest.approx(mean)
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(2 * sps.t.sf(abs(t), 2))
    assert result.p_value == pytest.approx(sps.ttest_rel([0.91, 0.88, 0.93], [0.85, 0.86, 0.90]).pvalue)


def test_wilcoxon_on_request() -> None:
    level = {s: 1.0 + 0.1 * s for s in range(6)}
    reference = {s: 0.0 for s in range(6)}
    result = stats.paired_test(level, reference, test="wilcoxon")
    assert result.test == "wilcoxon"
    assert result.p_value == pytest.approx(2 / 2**6)  # exact: all 6 differences positive
    assert stats.verdict(result, result.p_value, "maximize") == stats.BETTER


def test_wilcoxon_with_five_seeds_cannot_reach_alpha() -> None:
    level = {s: 1.0 + 0.1 * s for s in range(5)}
    result = stats.paired_test(level, dict.fromkeys(range(5), 0.0), test="wilcoxon")
    assert result.p_value == pytest.approx(0.0625) and result.min_p == pytest.approx(0.0625)
    assert stats.verdict(result, result.p_value, "maximize") == stats.NEEDS_SEEDS


def test_holm_on_known_vector() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # monotone step-down and capped at 1; missing tests stay missing and do not count in m
    assert stats.holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []
    with pytest.raises(ValueError, match="p_values"):
        stats.holm([1.5])


def test_verdicts_are_direction_aware() -> None:
    up = stats.PairedResult(5, 0.1, "ttest", 9.0, 0.001, 0.0)
    down = stats.PairedResult(5, -0.1, "ttest", -9.0, 0.001, 0.0)
    assert stats.verdict(up, 0.002, "maximize") == stats.BETTER
    assert stats.verdict(down, 0.002, "maximize") == stats.WORSE
    assert stats.verdict(down, 0.002, "minimize") == stats.BETTER  # lower loss is better
    assert stats.verdict(up, 0.002, "minimize") == stats.WORSE
    assert stats.verdict(up, 0.2, "maximize") == stats.NO_DIFFERENCE  # Holm-adjusted p decides
    with pytest.raises(ValueError, match="direction"):
        stats.verdict(up, 0.002, "max")


def test_needs_more_seeds_below_two_pairs() -> None:
    result = stats.paired_test({0: 0.9}, {0: 0.8, 1: 0.7})
    assert result.n_pairs == 1 and result.p_value is None and result.mean_diff == pytest.approx(0.1)
    assert stats.verdict(result, None, "maximize") == stats.NEEDS_SEEDS
    assert stats.paired_test({}, {0: 0.8}).mean_diff is None


def test_zero_variance_differences() -> None:
    # identical non-zero differences: t is infinite; the exact sign test stands in (p = 2^(1-n))
    few = stats.paired_test({s: 0.9 + s for s in range(3)}, {s: 0.8 + s for s in range(3)})
    assert few.test == "sign" and few.p_value == pytest.approx(0.25)
    assert stats.verdict(few, few.p_value, "maximize") == stats.NEEDS_SEEDS
    many = stats.paired_test({s: 0.9 + s for s in range(6)}, {s: 0.8 + s for s in range(6)})
    assert many.p_value == pytest.approx(2 / 2**6)
    assert stats.verdict(many, many.p_value, "maximize") == stats.BETTER
    # identical results on every seed: no difference at all
    same = stats.paired_test({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6})
    assert same.p_value == 1.0 and stats.verdict(same, 1.0, "maximize") == stats.NO_DIFFERENCE


def test_bad_test_name() -> None:
    with pytest.raises(ValueError, match="ttest, wilcoxon"):
        stats.paired_test({0: 1.0}, {0: 1.0}, test="anova")


def test_metric_bounds_by_name() -> None:
    assert stats.metric_bounds(METRIC_VAL_ACC) == (0.0, 1.0) and stats.metric_bounds("test_accuracy") == (0.0, 1.0)
    assert stats.metric_bounds(METRIC_VAL_LOSS) == (0.0, math.inf)
    assert stats.metric_bounds("val/bleu") is None
    assert stats.difference_bounds((0.0, 1.0)) == (-1.0, 1.0) and stats.difference_bounds(None) is None
    assert stats.difference_bounds((0.0, math.inf)) == (-math.inf, math.inf)


def test_interval_of_a_bounded_metric_stays_in_range() -> None:
    values = [1.0, 1.0, 0.95]  # t interval ≈ [0.912, 1.055]: an accuracy cannot exceed 1
    open_ = stats.describe(values)
    clipped = stats.describe(values, bounds=stats.metric_bounds(METRIC_VAL_ACC))
    assert open_.ci_high is not None and open_.ci_high > 1.0
    assert clipped.ci_high == 1.0 and clipped.ci_low == pytest.approx(open_.ci_low)
    assert (clipped.mean, clipped.std) == (open_.mean, open_.std)
    assert stats.clip_interval(-0.2, None, (0.0, 1.0)) == (0.0, None)
    assert stats.clip_interval(-5.0, 5.0, None) == (-5.0, 5.0)
    with pytest.raises(ValueError, match="bounds"):
        stats.clip_interval(0.0, 1.0, (1.0, 0.0))
