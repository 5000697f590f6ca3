"""When identical results are evidence of equivalence: the chance of a zero paired difference at |Δ| = effect.

On a metric with a resolution (an accuracy over N examples: whole examples), two runs can give exactly the same
value although the design parameter changes the expected value. If the margin ``effect`` spans few resolution
steps this is common: with effect = one example, a true difference of one example still reads as a zero paired
difference about a quarter of the time. "Identical on every seed" is therefore a test like any other, with a
p-value: under H0 |Δ| ≥ effect the probability that n independent paired differences are all zero is at most

    q(e)ⁿ,   q(e) = sup P(D = 0 | Δ = e)   (e: the effect in resolution steps)

where the supremum is over the noise of a run and where the expected values lie between two grid points. The
model: each run's value is its expectation plus normal noise of sd σ, rounded to the grid (a count of correct
examples), independently for the two runs of a pair; D is the difference of the two rounded values. q is
computed numerically over σ ∈ [0.02, 4·max(e, 1)] steps (log grid) and the expectation's offset on the grid, and
the worst case of the "rounded difference" model (D = round(e + s·Z)) is taken too. q decreases with e (checked
in tests/dashboards_tests/test_verdict_edges.py), so beyond ``EXACT_UP_TO`` steps q(``EXACT_UP_TO``) is used: an upper
bound. Measured: q(1) ≈ 0.25 (so two identical pairs, 0.0625, are not evidence at α = 0.05: three are),
q(5) ≈ 0.05, q(64) ≈ 0.004.

Assumptions of the bound: runs are rounded normals (expectation plus normal noise, rounded to the grid), and the
two runs of a pair share one noise level σ. With separate noise levels q is larger at small margins: one run
nearly deterministic just below a half-step boundary and the other's noise straddling the next one give a zero
difference up to half the time at e = 1. ``_zero_probability`` does not take that worst case.

:mod:`dashboards.sequential` uses q(e)ⁿ as the equivalence p-value of n identical pairs, compared with the same
one-sided boundary as a TOST side; the regression simulation (tests/dashboards_tests/test_decision_simulation.py)
checks the error at a true difference equal to the effect.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import stats

EXACT_UP_TO = 64.0  # steps: q is computed exactly up to here, bounded by q(EXACT_UP_TO) beyond
SIGMAS = 96  # points of the σ grid
OFFSETS = 24  # points of the offset grid in [0, 1)


@lru_cache(maxsize=256)
def _zero_probability(steps: float) -> float:
    e = steps
    sigmas = np.geomspace(0.02, 4.0 * max(e, 1.0), SIGMAS)
    worst = 0.0
    for sigma in sigmas:
        reach = math.ceil(8.0 * sigma) + 2
        k = np.arange(-reach, math.ceil(e) + reach + 1)[None, :]
        offsets = (np.arange(OFFSETS) / OFFSETS)[:, None]
        reference = stats.norm.cdf((k + 0.5 - offsets) / sigma) - stats.norm.cdf((k - 0.5 - offsets) / sigma)
        level = stats.norm.cdf((k + 0.5 - offsets - e) / sigma) - stats.norm.cdf((k - 0.5 - offsets - e) / sigma)
        worst = max(worst, float((reference * level).sum(axis=1).max()))
        rounded = stats.norm.cdf((0.5 - e) / sigma) - stats.norm.cdf((-0.5 - e) / sigma)
        worst = max(worst, float(rounded))
    return min(worst, 1.0)


def zero_probability(steps: float) -> float:
    """q(e): the most probable a zero paired difference is when the true difference is ``steps`` resolution steps
    (see the module docstring); 1 for a margin of no step, 0 for an unbounded one."""
    if not steps > 0.0:
        return 1.0
    if math.isinf(steps):
        return 0.0
    return _zero_probability(round(min(float(steps), EXACT_UP_TO), 9))


def identical_p(steps: float, n: int | np.ndarray) -> np.ndarray:
    """The equivalence p-value of ``n`` identical pairs (all differences zero) with a margin of ``steps``."""
    return np.power(zero_probability(steps), np.asarray(n, dtype=float))
