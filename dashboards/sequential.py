"""Group-sequential paired t-tests: alpha spending over seeds, Holm across comparisons, TOST equivalence.

A comparison (design point against its reference, paired by seed) is *looked at* after n = min, min+1, …, max paired
seeds. Testing at α on every look would inflate the false-positive rate (0.13 instead of 0.05 with 8 looks, measured
in tests/dashboards_tests/test_verdicts.py), so each look gets a smaller *nominal* level from an **alpha-spending
function** (Lan & DeMets, 1983) over the information fraction t = n / max:

- ``pocock`` (default): α·ln(1 + (e − 1)·t) — spends early, so clear effects stop after few seeds;
- ``obrien-fleming``: 2 − 2·Φ(z_{1−α/2} / √t) — spends almost nothing early, keeps nearly all of α for the end.

The classic boundaries assume a z statistic (known σ). Here σ is estimated from as few as 3 seeds, and using the z
boundaries' nominal p-values with t-tests is not valid (type I error 0.059 instead of 0.05 in a 400,000-path
simulation with min 3, max 10). So the boundaries are calibrated **for the t statistic itself**: under H0 the
sequence of paired t statistics at n = min…max (i.i.d. normal differences) has a law free of σ and of the mean, so
it is simulated once (2^20 paths, fixed generator seed: a pure, deterministic function) and, look by look, the
critical value is the quantile that makes the probability of first crossing at that look equal to the spending
increment. The first look's critical value is exact (``t.isf``). Each look's critical value becomes a nominal
p-value threshold (``p_boundary``); a look rejects when the paired t-test's p-value is below it.

Multiplicity across comparisons: Holm's step-down as a graphical group-sequential procedure (Maurer & Bretz,
2013): at each look a comparison not yet rejected is tested with the boundaries of the level α / r, where r is
the number of comparisons not yet rejected (those stopped as *equivalent* or at max keep their share, which is
conservative); a rejection at a look lets the others be re-tested at that look with the larger level. Every
comparison's own looks are contiguous (min … its stop); stopping for equivalence or at max only truncates its
sequential test, which can only lower its error (non-binding). Strong control of the family-wise error for
better/worse verdicts follows from the closure principle with Bonferroni intersection tests (valid for any
correlation, here the shared reference).

Equivalence: two one-sided paired t-tests (TOST, Schuirmann 1987) of H0: Δ ≤ −effect and H0: Δ ≥ +effect, each
sequential with one-sided boundaries calibrated the same way at α (not Holm-corrected, like TOST itself).

Ties at the values' resolution (``resolution``: the step of a paired difference, :mod:`dashboards.resolution` —
1/N for an accuracy over N examples, float32's otherwise). Differences whose spread is below half a step are
*identical*; the t statistic is never formed from such a spread (it would be rounding noise):

- identical and all zero (an A/A comparison: the same value on every seed) → **identical**: the difference test's
  p = 1; the equivalence p is q(e)ⁿ (:mod:`dashboards.ties`: the largest chance of a zero paired difference when
  the true difference is the margin, e = effect in resolution steps), against the look's TOST boundary — so
  identical results show equivalence at once when the margin spans many steps, and only after enough seeds when
  it spans one or two (at one example, q = 0.25: two identical pairs are not evidence at α = 0.05);
- identical and non-zero (every seed gained the same k examples) → the exact sign test replaces t, as in
  :mod:`dashboards.stats`: two-sided p = 2^(1−n), one-sided 2^(−n) for a TOST side the constant difference clears
  (1 if it does not). With only the signs to go on it needs n ≥ ``sign_test_seeds`` to decide;
- otherwise the paired variance is floored at the quantisation's, step² / 6 (each value known to ±step/2).

The margin is compared exactly. With ``counts`` (an accuracy over N examples) the differences are whole examples
and a mean is within ±effect only when |Σ d| < n · effect in examples — a difference equal to the effect is
never within it, and the same counts give the same verdict at every base accuracy (float rounding of
``abs(mean) < effect`` decided it before). Without N a mean within half a resolution step of the margin is not
within it. A mean outside the margin has a TOST p of at least 0.5.

A comparison that will get no more pairs (``final``: a seed failed for good) takes a *last look* on the pairs it
has: the looks before keep their critical values and the last spends all of α that is left
(:meth:`Boundaries.last_look`); below the first look, that is one plain test at α.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from . import ties

SPENDING = ("pocock", "obrien-fleming")
CALIBRATION_PATHS = 2**20
CALIBRATION_SEED = 20_261_127
UNDECIDED, BETTER, WORSE, EQUIVALENT = 0, 1, 2, 3  # codes of Decisions.verdict
RELATIVE_TIE = 1e-9  # without a resolution: differences equal to this relative precision are identical


def spend(spending: str, fraction: np.ndarray, alpha: float) -> np.ndarray:
    """Cumulative α spent by information fraction ``fraction`` ∈ (0, 1]; equals α at 1."""
    t = np.asarray(fraction, dtype=float)
    if spending == "pocock":
        return alpha * np.log1p((math.e - 1.0) * t)
    if spending == "obrien-fleming":
        return 2.0 - 2.0 * stats.norm.cdf(stats.norm.isf(alpha / 2.0) / np.sqrt(t))
    raise ValueError(f"spending={spending!r} is not valid; choose one of {', '.join(SPENDING)}")


@lru_cache(maxsize=2)
def _null_t_paths(min_seeds: int, max_seeds: int) -> np.ndarray:
    """Paired t statistics of i.i.d. N(0, 1) differences at n = min…max: (paths, looks), read-only."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    looks = np.arange(min_seeds, max_seeds + 1)
    chunk = 2**16  # bounded memory while simulating
    t = np.concatenate([t_statistics(rng.standard_normal((chunk, max_seeds)), looks, 0.0)
                        for _ in range(CALIBRATION_PATHS // chunk)])
    t.setflags(write=False)
    return t


def t_statistics(diffs: np.ndarray, looks: np.ndarray, shift: float, floor: float = 0.0) -> np.ndarray:
    """(mean − shift) / (sd / √n) over the first n entries of the last axis, for each n in ``looks``; the
    variance sd² is taken no smaller than ``floor``."""
    n = np.asarray(looks)
    centred = diffs - diffs[..., :1]  # the variance does not change; the sums of squares stay small
    total = np.cumsum(centred, axis=-1)[..., n - 1]
    squares = np.cumsum(centred * centred, axis=-1)[..., n - 1]
    var = np.maximum(np.maximum(squares - total * total / n, 0.0) / (n - 1), floor)
    mean = diffs[..., :1] + total / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return (mean - shift) / np.sqrt(var / n)


@lru_cache(maxsize=256)
def _nominal(min_seeds: int, max_seeds: int, alpha: float, spending: str, sides: int,
             last: int | None = None) -> tuple[float, ...]:
    """Nominal thresholds of the looks n = min…``last`` (default max). A ``last`` below max is a *truncated*
    design (no more pairs will come): the looks before it keep their critical values, and the last spends all
    of α that is left; a ``last`` below min is one look at α."""
    last = max_seeds if last is None else last
    if last < min_seeds:
        return (alpha,)  # one look: the plain test at α (its nominal p threshold is α itself)
    looks = np.arange(min_seeds, last + 1)
    cumulative = spend(spending, looks / max_seeds, alpha)
    cumulative[-1] = alpha
    increments = np.diff(np.concatenate([[0.0], cumulative]))
    paths = _null_t_paths(min_seeds, max_seeds) if looks.size > 1 else np.zeros((0, 1))
    alive = np.ones(paths.shape[0], dtype=bool)
    nominal = []
    for k, n in enumerate(looks):
        if k == 0:
            critical = float(stats.t.isf(increments[0] / sides, n - 1))
        else:
            statistic = np.abs(paths[alive, k]) if sides == 2 else paths[alive, k]
            crossing = int(np.floor(increments[k] * paths.shape[0]))  # never more than the increment
            if crossing <= 0:
                critical = math.inf
            elif crossing >= statistic.size:
                critical = float(statistic.min())
            else:
                top = -np.partition(-statistic, (crossing - 1, crossing))[[crossing - 1, crossing]]
                critical = float(top.mean())  # between the crossing-th and the next largest
        column = np.abs(paths[:, k]) if sides == 2 else paths[:, k]
        alive &= column < critical
        nominal.append(float(sides * stats.t.sf(critical, n - 1)))
    return tuple(nominal)


@dataclass(frozen=True)
class Boundaries:
    """Nominal p-value thresholds per look n = ``looks[k]``.

    ``difference[r − 1, k]``: two-sided threshold of the difference test when r comparisons are not yet rejected
    (Holm level α / r); ``equivalence[k]``: one-sided threshold of each TOST side (level α).
    """

    looks: tuple[int, ...]
    difference: np.ndarray
    equivalence: np.ndarray
    alpha: float
    spending: str

    def last_look(self, n: int) -> tuple[np.ndarray, float]:
        """The thresholds of a truncated design's last look at ``n`` paired seeds (``2 ≤ n < max``): difference
        per Holm level (``[r − 1]``) and equivalence; the earlier looks keep theirs, the last spends the rest."""
        low, high = self.looks[0], self.looks[-1]
        difference = np.array([_nominal(low, high, self.alpha / r, self.spending, 2, n)[-1]
                               for r in range(1, self.difference.shape[0] + 1)])
        return difference, _nominal(low, high, self.alpha, self.spending, 1, n)[-1]


def boundaries(min_seeds: int, max_seeds: int, alpha: float, comparisons: int,
               spending: str = "pocock") -> Boundaries:
    """Calibrated group-sequential boundaries for ``comparisons`` paired comparisons (see the module docstring)."""
    if not (isinstance(min_seeds, int) and isinstance(max_seeds, int) and 2 <= min_seeds <= max_seeds):
        raise ValueError(f"min_seeds={min_seeds!r}, max_seeds={max_seeds!r} are not valid; "
                         "need integers with 2 ≤ min_seeds ≤ max_seeds (a paired t-test needs 2 seeds)")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r} is not valid; it must lie in (0, 1), e.g. 0.05")
    if comparisons < 1:
        raise ValueError(f"comparisons={comparisons!r} is not valid; need at least 1")
    if spending not in SPENDING:
        raise ValueError(f"spending={spending!r} is not valid; choose one of {', '.join(SPENDING)}")
    difference = np.array([_nominal(min_seeds, max_seeds, alpha / r, spending, 2)
                           for r in range(1, comparisons + 1)])
    equivalence = np.array(_nominal(min_seeds, max_seeds, alpha, spending, 1))
    return Boundaries(tuple(range(min_seeds, max_seeds + 1)), difference, equivalence, alpha, spending)


@dataclass(frozen=True)
class Decisions:
    """Per (study, comparison): the verdict code and the numbers of the look that decided (or the last look)."""

    verdict: np.ndarray  # int codes UNDECIDED / BETTER / WORSE / EQUIVALENT
    n: np.ndarray  # paired seeds at that look (pairs available when below the first look)
    delta: np.ndarray  # mean paired difference, level − reference
    p_value: np.ndarray  # two-sided difference test (t, or sign when degenerate); NaN before the first look
    p_boundary: np.ndarray  # its nominal threshold at that look and Holm level
    p_equivalence: np.ndarray  # TOST: the larger of the two one-sided p-values
    eq_boundary: np.ndarray
    degenerate: np.ndarray  # bool: identical differences at the resolution (sign test, or identical when zero)
    identical: np.ndarray  # bool: every paired value equal at the resolution (all differences zero)


def _p_values(diffs: np.ndarray, looks: np.ndarray, effect: float, step: float,
              counts: bool) -> tuple[np.ndarray, ...]:
    """Two-sided difference p, TOST p (max of the two sides), means, degenerate and identical flags: (..., looks).

    ``diffs`` and ``effect`` are in units of the resolution ``step`` (step 1) or, without one (step 0), as given.
    ``counts``: the differences are whole steps (examples), so the margin is compared exactly in examples."""
    df = looks - 1
    floor = step * step / 6.0
    t = t_statistics(diffs, looks, 0.0, floor)
    lower = t_statistics(diffs, looks, -effect, floor)  # H0: Δ ≤ −effect
    upper = -t_statistics(diffs, looks, effect, floor)  # H0: Δ ≥ +effect
    total = np.cumsum(diffs, axis=-1)[..., looks - 1]
    mean = total / looks
    with np.errstate(invalid="ignore"):
        p = 2.0 * stats.t.sf(np.abs(t), df)
        p_eq = np.maximum(stats.t.sf(lower, df), stats.t.sf(upper, df))
    first = diffs[..., :1]
    spread = np.maximum.accumulate(np.abs(diffs - first), axis=-1)[..., looks - 1]
    tie = np.maximum(step / 2.0, RELATIVE_TIE * np.maximum(1.0, np.abs(first)))
    degenerate = spread < tie
    zero = degenerate & (np.abs(mean) < tie)
    if counts:  # whole examples: |Σ d| < n·effect, exactly (a sum equal to the margin is not within it)
        margin = effect * looks
        within = np.abs(total) < margin - 1e-9 * np.maximum(1.0, margin)
    else:  # a mean within half a step of the margin is not within it
        within = np.abs(mean) < effect - tie
    p_eq = np.where(within, p_eq, np.maximum(p_eq, 0.5))
    sign_p = np.broadcast_to(2.0 ** (1 - looks), p.shape)
    p = np.where(degenerate, np.where(zero, 1.0, sign_p), p)
    sign_eq = np.where(within, 2.0 ** (-looks.astype(float)), 1.0)
    same_p = np.broadcast_to(ties.identical_p(effect / step if step > 0 else math.inf, looks), p.shape)
    p_eq = np.where(degenerate, np.where(zero, same_p, sign_eq), p_eq)
    return p, p_eq, mean, degenerate, zero


def sign_test_seeds(threshold: float, sides: int = 2, cap: int = 64) -> int | None:
    """The fewest paired seeds at which an exact sign test can reach p < ``threshold`` (all signs alike):
    2^(1−n) two-sided, 2^(−n) one-sided; None beyond ``cap``."""
    for n in range(1, cap + 1):
        if 2.0 ** (sides - 1 - n) < threshold:
            return n
    return None


def sequential_decisions(diffs: np.ndarray, available: np.ndarray, *, effect: float, sign: int,
                         bounds: Boundaries, family: int | None = None, resolution: float = 0.0,
                         counts: bool = False, final: np.ndarray | None = None) -> Decisions:
    """Replay the looks of studies at once: ``diffs`` (studies, comparisons, seeds) of paired differences
    level − reference in seed order, ``available`` (studies, comparisons) how many leading entries are real.

    ``sign`` is +1 when larger is better (maximize), −1 otherwise. ``family``: the Holm family size (default:
    the comparisons given; more counts absent comparisons as never rejected). ``resolution``: the step of a
    paired difference (see the module docstring; 0: ties only at float64 precision). ``counts``: the differences
    are whole multiples of ``resolution`` (an accuracy over N examples): they are read as whole examples and the
    margin ``effect`` is compared with them exactly. ``final`` (studies, comparisons): no more pairs will come
    (a seed failed for good): a comparison with fewer than max pairs gets a last look at the pairs it has, which
    spends the rest of α (:meth:`Boundaries.last_look`). Decisions are final: a comparison stops at its first
    deciding look. Pure and vectorised, so the same code serves the study loop and the simulations.
    """
    if not (math.isfinite(resolution) and resolution >= 0.0):
        raise ValueError(f"resolution={resolution!r} is not valid; need a finite step ≥ 0 (e.g. 1/N)")
    if counts and resolution <= 0.0:
        raise ValueError("counts=True needs the step of a count: resolution=1/N")
    diffs = np.asarray(diffs, dtype=float)
    studies, m, width = diffs.shape
    family = m if family is None else family
    if not m <= family <= bounds.difference.shape[0]:
        raise ValueError(f"family={family} is not valid with {m} comparisons and boundaries for "
                         f"{bounds.difference.shape[0]}; need comparisons ≤ family ≤ boundaries' comparisons")
    looks = np.asarray(bounds.looks)
    first_look, last_look = int(looks[0]), int(looks[-1])
    filled = np.where(np.arange(width) < np.asarray(available)[..., None], diffs, 0.0)
    step, margin = (1.0, effect / resolution) if resolution > 0.0 else (0.0, effect)
    if resolution > 0.0:
        filled = filled / resolution
        if counts:
            filled = np.rint(filled)
            margin = float(np.rint(margin)) if abs(margin - np.rint(margin)) <= 1e-6 * max(1.0, margin) else margin
    ns = np.arange(2, min(width, last_look) + 1)
    p, p_eq, mean, degenerate, zero = _p_values(filled, ns, margin, step, counts) if ns.size else (None,) * 5
    if resolution > 0.0 and ns.size:
        mean = mean * resolution
    avail = np.minimum(np.asarray(available), last_look)
    ended = np.zeros((studies, m), dtype=bool) if final is None else np.asarray(final, dtype=bool)
    verdict = np.full((studies, m), UNDECIDED)
    out = {name: np.full((studies, m), np.nan) for name in ("delta", "p", "pb", "pe", "eb")}
    n = avail.astype(int).copy()
    degen = np.zeros((studies, m), dtype=bool)
    same = np.zeros((studies, m), dtype=bool)
    rejected = np.zeros((studies, m), dtype=bool)
    stopped = np.zeros((studies, m), dtype=bool)
    for i, look in enumerate(ns):
        k = look - first_look  # the regular look's index (negative: below the first look)
        truncated = ended & (avail == look) & (look < last_look)
        at_look = ~stopped & (truncated | ((avail >= look) if k >= 0 else False))
        if not at_look.any():
            continue
        last_difference, last_equivalence = bounds.last_look(int(look)) if truncated.any() else (None, math.nan)
        while True:  # Holm step-down at this look: a rejection raises the others' level to α / r
            remaining = np.maximum(family - rejected.sum(axis=1), 1)
            regular = bounds.difference[remaining - 1, k] if k >= 0 else np.full(studies, np.nan)
            threshold = regular[:, None] if last_difference is None else \
                np.where(truncated, last_difference[remaining - 1][:, None], regular[:, None])
            new = at_look & ~rejected & (p[..., i] < threshold)
            out["pb"] = np.where(at_look & ~rejected, threshold, out["pb"])
            if not new.any():
                break
            rejected |= new
        eq_threshold = np.where(truncated, last_equivalence, bounds.equivalence[k] if k >= 0 else np.nan)
        equivalent = at_look & ~rejected & (p_eq[..., i] < eq_threshold)
        improved = sign * mean[..., i] > 0
        verdict = np.where(at_look & rejected, np.where(improved, BETTER, WORSE), verdict)
        verdict = np.where(equivalent, EQUIVALENT, verdict)
        stopped |= at_look & (rejected | equivalent)
        for name, values in (("delta", mean[..., i]), ("p", p[..., i]), ("pe", p_eq[..., i])):
            out[name] = np.where(at_look, values, out[name])
        out["eb"] = np.where(at_look, eq_threshold, out["eb"])
        degen = np.where(at_look, degenerate[..., i], degen)
        same = np.where(at_look, zero[..., i], same)
        n = np.where(at_look, look, n)
    return Decisions(verdict, n, out["delta"], out["p"], out["pb"], out["pe"], out["eb"], degen, same)
