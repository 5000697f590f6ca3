"""Main effects and the interaction of a two-factor grid, paired by seed: the statistics, vectorised over studies.

A grid over two factors A (levels a₀ … a_{p−1}) and B (b₀ … b_{q−1}) gives every cell (a, b) one value per seed;
every cell has the same seeds, so each contrast below is one number per seed and is tested *paired by seed*
like an ablation's Δ (the seed's shared initialisation and data order cancel in it):

- **main effect of A** at level a: ``mean_b [y(a, b) − y(a₀, b)]`` — the effect of a against the baseline a₀,
  averaged over B's levels (a₀: the spec's ``search.reference`` level of A, else its first level);
- **main effect of B** at level b, the same way averaged over A;
- **interaction** at (a, b): ``[y(a, b) − y(a₀, b)] − [y(a, b₀) − y(a₀, b₀)]``, the difference of
  differences — does the effect of a depend on B? Zero when the effects add up.

**The margin.** ``search.effect`` is the smallest difference that matters in the objective; a main effect is such
a difference, and so is an interaction: the difference of differences is itself a difference of the objective
(how much more a gains at b than at b₀), so it is judged against the same ±effect. "No interaction" (the
verdict *equivalent*) means the effect of a changes by less than the effect across B's levels.

**Error control.** Every contrast of the grid — (p−1) + (q−1) main effects and (p−1)(q−1) interactions — forms one
Holm family at α (strong family-wise control of the difference verdicts); equivalence is TOST at α per contrast,
as in the ablation table. The analysis is one look at the seeds every cell has (the study's rounds spend seeds on
its comparisons with the reference, not on these contrasts), so the thresholds are the fixed-sample ones.

**Ties.** The p-values come from :func:`dashboards.sequential.sequential_decisions` (one look), so a contrast is
read at its resolution exactly as a comparison is: on an accuracy over N examples, values are k/N, the
interaction is a whole number of examples (resolution 1/N) and a main effect over q levels a whole number of
1/(qN); a spread below half a step is no spread (the exact sign test, never a t statistic from rounding noise),
and the margin is compared in those whole units. Only one rule differs: a contrast that is zero on every seed is
evidence of equivalence with the p-value qᵣ(e)ⁿ (:func:`zero_probability`), where qᵣ counts the r runs the
contrast adds up (4 for an interaction, 2q for a main effect): with four rounding errors, a true interaction of
up to two examples can read zero on every seed even with noiseless runs, so the two-run bound of
:mod:`dashboards.ties` would be too small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as sps

from . import sequential, ties

MAIN, INTERACTION = "main", "interaction"
EXACT_UP_TO = 24.0  # steps: qᵣ for r > 2 runs is computed up to here, bounded by qᵣ(EXACT_UP_TO) beyond
SIGMAS = 48
COMBINATIONS = 512  # offset grid points over the r − 1 free runs


@dataclass(frozen=True)
class Contrast:
    """One contrast of the grid: ``kind`` main or interaction, the level(s) it compares with the baselines."""

    kind: str
    factor: str  # "A", "B" or "A×B"
    a: int  # A's level index (0: not involved, a main effect of B)
    b: int  # B's level index (0: not involved, a main effect of A)
    units: int  # the contrast times ``units`` is a whole number of value steps (q for A's main effect, p for B's)
    runs: int  # how many runs the contrast adds up (2q, 2p or 4)


def contrast_list(levels_a: int, levels_b: int) -> list[Contrast]:
    """The contrasts of a ``levels_a`` × ``levels_b`` grid: A's main effects, B's, then the interactions."""
    if levels_a < 2 or levels_b < 2:
        raise ValueError(f"a two-factor grid needs ≥ 2 levels per factor; got {levels_a} × {levels_b}")
    found = [Contrast(MAIN, "A", i, 0, levels_b, 2 * levels_b) for i in range(1, levels_a)]
    found += [Contrast(MAIN, "B", 0, j, levels_a, 2 * levels_a) for j in range(1, levels_b)]
    found += [Contrast(INTERACTION, "A×B", i, j, 1, 4) for i in range(1, levels_a) for j in range(1, levels_b)]
    return found


def contrast_values(cells: np.ndarray, contrasts: Sequence[Contrast]) -> np.ndarray:
    """Per-seed contrasts from ``cells`` (..., A's levels, B's levels, seeds): (..., contrasts, seeds)."""
    cells = np.asarray(cells, dtype=float)
    out = []
    for c in contrasts:
        if c.kind == MAIN and c.factor == "A":
            out.append((cells[..., c.a, :, :] - cells[..., 0, :, :]).mean(axis=-2))
        elif c.kind == MAIN:
            out.append((cells[..., :, c.b, :] - cells[..., :, 0, :]).mean(axis=-2))
        else:
            out.append(cells[..., c.a, c.b, :] - cells[..., 0, c.b, :] - cells[..., c.a, 0, :]
                       + cells[..., 0, 0, :])
    return np.stack(out, axis=-2)


def _spectrum(offsets: np.ndarray, support: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """The Fourier transform of round(offset + σZ)'s pmf on ``support``, one row per offset."""
    pmf = (sps.norm.cdf((support + 0.5 - offsets[:, None]) / sigma)
           - sps.norm.cdf((support - 0.5 - offsets[:, None]) / sigma))
    return np.fft.rfft(pmf, size)


@lru_cache(maxsize=64)
def _zero_probability(runs: int, steps: float) -> float:
    grid = max(2, round(COMBINATIONS ** (1.0 / (runs - 1))))
    offsets = np.arange(grid) / grid
    free = np.stack(np.meshgrid(*([offsets] * (runs - 1)), indexing="ij"), axis=-1).reshape(-1, runs - 1)
    last = np.mod(steps - free.sum(axis=1), 1.0)  # Σ offsets ≡ steps: the expectations differ by whole steps
    target = free.sum(axis=1) + last - steps  # the sum of the rounded noises that makes the contrast zero
    worst = 0.0
    for sigma in np.geomspace(0.02, 4.0 * max(steps, 1.0), SIGMAS):
        reach = math.ceil(8.0 * sigma) + 2
        support = np.arange(-reach, reach + 2)
        size = 1 << math.ceil(math.log2(runs * support.size))

        each = _spectrum(offsets, support, sigma, size)
        product = _spectrum(last, support, sigma, size)
        for k in range(runs - 1):
            product = product * each[np.searchsorted(offsets, free[:, k])]
        total = np.fft.irfft(product, size)  # the sum's pmf; index 0 is the value −runs·reach
        index = np.rint(target).astype(int) + runs * reach
        worst = max(worst, float(total[np.arange(index.size), index].max()))
    return min(worst, 1.0)


def zero_probability(runs: int, steps: float) -> float:
    """qᵣ(e): the most probable a zero contrast is when its true value is ``steps`` resolution steps and it adds up
    ``runs`` independent rounded-normal runs with signs (one noise level σ for all, every offset on the grid;
    the model of :mod:`dashboards.ties`, which this equals for two runs). 1 below a margin of a step."""
    if runs == 2:
        return ties.zero_probability(steps)
    if not steps > 0.0:
        return 1.0
    if math.isinf(steps):
        steps = EXACT_UP_TO
    return _zero_probability(int(runs), round(min(float(steps), EXACT_UP_TO), 9))


@dataclass(frozen=True)
class Found:
    """Per (study, contrast): the numbers of the one look and the verdict code (codes of :mod:`.sequential`)."""

    verdict: np.ndarray
    delta: np.ndarray
    p_value: np.ndarray
    p_holm: np.ndarray
    p_equivalence: np.ndarray
    degenerate: np.ndarray
    identical: np.ndarray


def holm_adjusted(p: np.ndarray) -> np.ndarray:
    """Holm's adjusted p-values along the last axis (as :func:`dashboards.stats.holm`, vectorised)."""
    p = np.asarray(p, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(ranked, axis=-1), 1.0)
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def decide(values: np.ndarray, contrasts: Sequence[Contrast], *, effect: float, sign: int, alpha: float,
           step: float, counts: bool) -> Found:
    """Verdicts of every contrast of studies at once: ``values`` (studies, contrasts, seeds) from
    :func:`contrast_values`; ``step`` the resolution of one value (1/N with ``counts``: values are k/N).

    BETTER/WORSE: the contrast differs from 0 at Holm-adjusted p < α (the sign: ``sign`` · Δ > 0 is BETTER;
    an interaction's sign is the difference of differences'); EQUIVALENT: TOST within ±``effect``; else UNDECIDED.
    """
    values = np.asarray(values, dtype=float)
    studies, m, n = values.shape
    if n < 2:
        raise ValueError(f"{n} seeds shared by every cell; the contrasts need ≥ 2 paired seeds")
    bounds = sequential.boundaries(n, n, alpha, 1)
    fields = {name: np.empty((studies, m)) for name in ("delta", "p", "pe")}
    degenerate = np.zeros((studies, m), dtype=bool)
    identical = np.zeros((studies, m), dtype=bool)
    available = np.full((studies, 1), n)
    for j, contrast in enumerate(contrasts):
        resolution = step / contrast.units
        one = sequential.sequential_decisions(values[:, j : j + 1, :], available, effect=effect, sign=sign,
                                              bounds=bounds, resolution=resolution, counts=counts)
        fields["delta"][:, j], fields["p"][:, j] = one.delta[:, 0], one.p_value[:, 0]
        same = one.identical[:, 0]
        steps = effect / resolution if resolution > 0 else math.inf
        zero_p = zero_probability(contrast.runs, steps) ** n
        fields["pe"][:, j] = np.where(same, zero_p, one.p_equivalence[:, 0])
        degenerate[:, j], identical[:, j] = one.degenerate[:, 0], same
    p_holm = holm_adjusted(fields["p"])
    rejected = p_holm < alpha
    equivalent = ~rejected & (fields["pe"] < float(bounds.equivalence[0]))
    verdict = np.where(rejected, np.where(sign * fields["delta"] > 0, sequential.BETTER, sequential.WORSE),
                       np.where(equivalent, sequential.EQUIVALENT, sequential.UNDECIDED))
    return Found(verdict, fields["delta"], fields["p"], p_holm, fields["pe"], degenerate, identical)


def simulate(*, examples: int, noise: float, seeds: int, effect: float, main: tuple[float, float] = (0.0, 0.0),
             interaction: float = 0.0, studies: int, seed: int, alpha: float = 0.05) -> Found:
    """The decisions of ``studies`` simulated 2×2 studies (fixed generator ``seed``: deterministic), read as a
    report reads them: each run a count of correct examples out of ``examples``, ``round(μ + noise·Z)``
    (independent runs, the expectation's offset on the grid drawn per study), stored as float32 k/N and snapped
    back. ``main``: A's and B's true effects, ``interaction`` the true difference of differences, in examples.
    Used by tests/dashboards_tests/test_interaction_simulation.py and benchmarks/decision_figures.py."""
    rng = np.random.default_rng(seed)
    a, b = main
    mean = 0.6 * examples + np.array([[0.0, b], [a, a + b + interaction]])
    centre = mean[None, :, :, None] + rng.random(studies)[:, None, None, None]
    counts = np.clip(np.rint(centre + noise * rng.standard_normal((studies, 2, 2, seeds))), 0, examples)
    values = np.rint((counts / examples).astype(np.float32).astype(float) * examples) / examples
    listed = contrast_list(2, 2)
    return decide(contrast_values(values, listed), listed, effect=effect, sign=1, alpha=alpha,
                  step=1.0 / examples, counts=True)
