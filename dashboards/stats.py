"""Statistics of an ablation table: mean, std and t confidence interval over seeds; paired tests; Holm; verdicts.

An ablation (Ramachandran et al., 2019, Tables 3-7) compares levels of one factor. Here every level is trained
once per seed and seeds are shared across levels, so two levels are compared *paired by seed* (a seed fixes the
initialisation and the data order; pairing removes that variance): the paired t-test (``ttest_rel``) or, on
request, the Wilcoxon signed-rank test. The p-values of all levels tested against the reference are corrected
for multiple comparisons with Holm's step-down method, then turned into a plain verdict at α = 0.05.

Degenerate cases, decided here once:

- fewer than 2 paired seeds: no test (``needs more seeds``);
- every paired difference identical (zero variance): the t statistic is ±∞ (or 0/0 when all differences are 0)
  and its p-value means nothing. All differences 0 → p = 1 (the levels gave the same value on every seed).
  Identical non-zero differences → the exact two-sided sign test, p = 2^(1−n), which assumes nothing about the
  spread;
- a test whose smallest attainable p-value with n pairs is ≥ α can never detect anything: the sign test and the
  exact Wilcoxon test need n ≥ 6 non-zero differences (2^(1−5) = 0.0625). Such a non-significant result reads
  ``needs more seeds``, not ``no detectable difference``.

Bounded metrics: an interval of a bounded metric is clipped to the metric's range (an accuracy's t interval can
reach past 1 with few seeds). :func:`metric_bounds` gives the range from the metric's name — accuracies
(``*acc*``, as fractions) [0, 1], losses [0, ∞) — and a difference of two values of a metric bounded by [lo, hi]
lies in [lo − hi, hi − lo]. Clipping keeps every point of the interval that is possible, so its coverage does not
drop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
TESTS = ("ttest", "wilcoxon")

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
NEEDS_SEEDS = "needs more seeds"
REFERENCE = "reference"
NO_DATA = "no data"
VERDICTS = (BETTER, WORSE, NO_DIFFERENCE, NEEDS_SEEDS, REFERENCE, NO_DATA)


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and the t-distribution confidence interval of the mean."""

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None


Bounds = tuple[float, float]


def metric_bounds(metric: str) -> Bounds | None:
    """The range of a metric by name: ``*acc*`` → (0, 1), ``*loss*`` → (0, ∞); None when unknown (unbounded)."""
    name = metric.lower()
    if "acc" in name:
        return (0.0, 1.0)
    if "loss" in name:
        return (0.0, math.inf)
    return None


def difference_bounds(bounds: Bounds | None) -> Bounds | None:
    """The range of ``a − b`` for a and b in ``bounds``: (lo − hi, hi − lo)."""
    if bounds is None:
        return None
    low, high = bounds
    return (low - high, high - low)


def clip_interval(low: float | None, high: float | None, bounds: Bounds | None) -> tuple[float | None, float | None]:
    """An interval clipped to ``bounds`` (None ends and None bounds pass through)."""
    if bounds is None:
        return low, high
    if not bounds[0] <= bounds[1]:
        raise ValueError(f"bounds={bounds!r} is not valid; need (low, high) with low ≤ high")

    def clip(value: float | None) -> float | None:
        return None if value is None else min(max(value, bounds[0]), bounds[1])

    return clip(low), clip(high)


def describe(values: Sequence[float], confidence: float = CONFIDENCE, bounds: Bounds | None = None,
             var_floor: float = 0.0) -> Summary:
    """``mean ± t_{(1+c)/2, n−1} · s/√n`` clipped to ``bounds``; std and CI are None below 2 values. The interval
    uses s² no smaller than ``var_floor`` (the quantisation's variance, :mod:`.resolution`); ``std`` is s."""
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = float(data.mean())
    if n == 1:
        return Summary(1, mean, None, None, None)
    std = float(data.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * math.sqrt(max(std * std, var_floor) / n)
    low, high = clip_interval(mean - half, mean + half, bounds)
    return Summary(n, mean, std, low, high)


@dataclass(frozen=True)
class PairedResult:
    """A level against the reference over the seeds both have: ``diff = level − reference``."""

    n_pairs: int
    mean_diff: float | None
    test: str | None  # "ttest", "wilcoxon", "sign" (zero-variance fallback) or None (not computed)
    statistic: float | None
    p_value: float | None
    min_p: float | None  # the smallest p-value this test could give with these pairs
    note: str = ""


def pair_by_seed(level: Mapping[int, float], reference: Mapping[int, float]) -> tuple[list[int], np.ndarray]:
    """The shared seeds (sorted) and the paired differences ``level − reference``."""
    seeds = sorted(set(level) & set(reference))
    return seeds, np.asarray([level[s] - reference[s] for s in seeds], dtype=float)


def _constant(diffs: np.ndarray, step: float) -> bool:
    scale = max(1.0, float(np.max(np.abs(diffs))))
    return float(np.ptp(diffs)) < max(step / 2.0, 1e-9 * scale)


def _sign_test(diffs: np.ndarray) -> tuple[float, float]:
    nonzero = diffs[np.abs(diffs) > 0]
    k = int((nonzero > 0).sum())
    return float(k), float(stats.binomtest(k, int(nonzero.size)).pvalue)


def paired_test(
    level: Mapping[int, float], reference: Mapping[int, float], test: str = "ttest", step: float = 0.0
) -> PairedResult:
    """Compare two levels paired by seed (``{seed: value}``); see the module docstring for the edge cases.

    ``step``: the resolution of a paired difference (:mod:`.resolution`, e.g. 1/N for an accuracy over N
    examples): differences closer than half a step are equal, and all-equal differences are never t-tested.
    """
    if test not in TESTS:
        raise ValueError(f"test={test!r} is not valid; choose one of {', '.join(TESTS)}")
    seeds, diffs = pair_by_seed(level, reference)
    n = len(seeds)
    if n < 2:
        return PairedResult(n, float(diffs.mean()) if n else None, None, None, None, None,
                            f"{n} paired seed{'s' if n != 1 else ''}; a paired test needs ≥ 2")
    mean_diff = float(diffs.mean())
    if np.all(np.abs(diffs) < max(step / 2.0, 1e-12)):
        return PairedResult(n, mean_diff, test, 0.0, 1.0, None, "identical on every seed")
    if test == "ttest" and _constant(diffs, step):
        statistic, p = _sign_test(diffs)
        return PairedResult(n, mean_diff, "sign", statistic, p, 2.0 ** (1 - n),
                            "zero variance of differences: exact sign test instead of t")
    if test == "ttest":
        result = stats.ttest_rel(np.asarray([level[s] for s in seeds]), np.asarray([reference[s] for s in seeds]))
        return PairedResult(n, mean_diff, "ttest", float(result.statistic), float(result.pvalue), 0.0)
    nonzero = int((np.abs(diffs) >= max(step / 2.0, 1e-12)).sum())
    result = stats.wilcoxon(diffs, zero_method="wilcox")
    return PairedResult(n, mean_diff, "wilcoxon", float(result.statistic), float(result.pvalue),
                        2.0 ** (1 - nonzero))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment: sorted p_(1) ≤ … ≤ p_(m), adj_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j)).

    None entries (tests not computed) stay None and do not count in m.
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    for p, _ in present:
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ValueError(f"p_values contains {p!r}; p-values must lie in [0, 1]")
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def verdict(result: PairedResult, p_adjusted: float | None, direction: str, alpha: float = ALPHA) -> str:
    """``better`` / ``worse`` than the reference, ``no detectable difference`` or ``needs more seeds``.

    Direction-aware: for a minimised metric a negative difference is better.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction={direction!r} is not valid; choose one of maximize, minimize")
    if result.p_value is None or p_adjusted is None or result.mean_diff is None:
        return NEEDS_SEEDS
    if p_adjusted < alpha:
        improved = result.mean_diff > 0 if direction == "maximize" else result.mean_diff < 0
        return BETTER if improved else WORSE
    if result.min_p is not None and result.min_p >= alpha:
        return NEEDS_SEEDS
    return NO_DIFFERENCE
