"""What a study's seeds budget can decide, before spending it: power of the sequential design, smallest decidable
difference, and the fewest seeds at which each test can decide.

The verdicts (:mod:`dashboards.sequential`) are group-sequential paired tests with Holm across comparisons, so
the power of a ``{min, max}`` budget has no closed form; it is simulated here with the very code the study runs
(``sequential_decisions``): normal paired differences with standard deviation σ, one comparison with a planted
true difference δ, the others with none (the family of an ablation: most levels do little), 4,000 simulated
studies with a fixed generator (deterministic). Reported:

- ``power_2sigma``: how often a true δ = 2σ is called *better* within the budget;
- ``mdd_sigma``: the smallest δ, in units of σ, called better with 80 % power (bisection on common random
  numbers); ``None`` when even 12σ is not;
- with a known σ (the sd of the paired differences of the stored trials, pooled over comparisons): the same in
  the metric's units and the power at δ = ``effect``.

The equivalence margin enters too (a comparison stopped as equivalent is not called better): it is ``effect``/σ,
and σ = effect/2 is assumed while σ is unknown (say so in the text).

σ is the noise of a *paired difference* (seed s of a level minus seed s of the reference), the quantity the tests
see. Without N the simulation treats the metric as continuous. With ``examples`` (an accuracy over N examples: the
study's own split) whole studies are simulated on whole examples (:mod:`.simulate`: per-run noise σ/√2 examples,
rounded), where a σ below one example gives identical runs and sign tests: the power of "2σ" then depends on N
(docs/report.md has the table by N and noise, from benchmarks/decision_figures.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from . import sequential, simulate

POWER = 0.8
STUDIES = 4000
SIM_SEED = 20_261_206
MAX_SIGMAS = 12.0


@dataclass(frozen=True)
class DesignPower:
    """What a seeds budget can decide (see the module docstring)."""

    min_seeds: int
    max_seeds: int
    comparisons: int
    alpha: float
    effect: float
    power_2sigma: float
    mdd_sigma: float | None
    sd: float | None  # σ of a paired difference, when known
    sd_source: str  # where σ comes from ("the stored trials (n pairs)"), or why it is unknown
    power_at_effect: float | None  # P(better) at a true difference of ``effect`` with σ = ``sd``
    ttest_seeds: int  # the first look: a paired t-test with a resolved spread can decide there
    sign_seeds: int | None  # all differences equal (non-zero): the exact sign test's first deciding look
    tost_sign_seeds: int | None  # the same for equivalence (both TOST sides by signs)
    examples: int | None = None  # N: simulated on whole examples of a split of N (None: a continuous metric)

    @property
    def mdd(self) -> float | None:
        """The smallest difference decided with 80 % power, in the metric's units (σ known)."""
        return None if self.sd is None or self.mdd_sigma is None else self.mdd_sigma * self.sd

    def lines(self) -> list[str]:
        """Plain sentences for the dry run and the report."""
        budget = (f"{self.min_seeds}–{self.max_seeds} seeds" if self.min_seeds < self.max_seeds
                  else f"{self.max_seeds} seeds")
        family = f"{self.comparisons} comparison{'s' if self.comparisons != 1 else ''}"
        mdd = f"{self.mdd_sigma:.1f}σ" if self.mdd_sigma is not None else f"more than {MAX_SIGMAS:g}σ"
        split = f", N = {self.examples} examples" if self.examples else ""
        out = [f"power ({budget}, {family}, α = {self.alpha:g}{split}): a true difference of 2σ is called better "
               f"{100 * self.power_2sigma:.0f} % of the time; 80 % power needs a difference of {mdd} "
               "(σ: sd of a paired difference, seed against seed)."]
        if self.sd is not None:
            smallest = "—" if self.mdd is None else f"{self.mdd:.4g}"
            at_effect = "" if self.power_at_effect is None else \
                f"; a true difference of effect {self.effect:g} is called better {100 * self.power_at_effect:.0f} %" \
                " of the time"
            out.append(f"σ = {self.sd:.3g} from {self.sd_source}: smallest difference decided with 80 % power "
                       f"≈ {smallest}{at_effect}.")
        else:
            in_examples = f" ({self.effect / 2 * self.examples:.3g} examples)" if self.examples else ""
            out.append(f"σ unknown ({self.sd_source}); with σ = effect/2 = {self.effect / 2:g}{in_examples}, effect "
                       f"{self.effect:g} is a 2σ difference.")
        sign = "never within max seeds" if self.sign_seeds is None else f"from {self.sign_seeds} seeds"
        tost = "never within max seeds" if self.tost_sign_seeds is None else f"from {self.tost_sign_seeds} seeds"
        out.append(f"smallest seeds to decide: paired t-test (spread resolved) and identical results from "
                   f"{self.ttest_seeds}; the same difference on every seed (sign test) {sign} for better/worse, "
                   f"{tost} for equivalence.")
        return out


def _power(bounds: sequential.Boundaries, noise: np.ndarray, delta: float, effect: float) -> float:
    diffs = noise.copy()
    diffs[:, 0] += delta
    studies, m, width = diffs.shape
    result = sequential.sequential_decisions(diffs, np.full((studies, m), width), effect=effect, sign=1,
                                             bounds=bounds)
    return float((result.verdict[:, 0] == sequential.BETTER).mean())


def _first_look(thresholds: Iterable[float], looks: Iterable[int], sides: int) -> int | None:
    for n, threshold in zip(looks, thresholds, strict=True):
        if 2.0 ** (sides - 1 - n) < threshold:
            return int(n)
    return None


def design_power(*, min_seeds: int, max_seeds: int, comparisons: int, effect: float, alpha: float = 0.05,
                 sd: float | None = None, sd_source: str = "no trials yet", examples: int | None = None
                 ) -> DesignPower:
    """Simulated power of the sequential design (see the module docstring); ``examples``: N when the metric is
    a fraction of N examples — the studies are then simulated on whole examples (:mod:`.simulate`), where a
    small σ means identical runs and sign tests, not a t-test."""
    if not (isinstance(comparisons, int) and comparisons >= 1):
        raise ValueError(f"comparisons={comparisons!r} is not valid; need an integer ≥ 1")
    if sd is not None and not (math.isfinite(sd) and sd > 0):
        raise ValueError(f"sd={sd!r} is not valid; need a positive finite number or None")
    if examples is not None and not (isinstance(examples, int) and examples >= 1):
        raise ValueError(f"examples={examples!r} is not valid; need the split's size N ≥ 1 or None")
    bounds = sequential.boundaries(min_seeds, max_seeds, alpha, comparisons)
    scaled = effect / sd if sd is not None else 2.0  # the equivalence margin in σ units (assumed: σ = effect/2)
    if examples is None:
        noise = np.random.default_rng(SIM_SEED).standard_normal((STUDIES, comparisons, max_seeds))

        def power(delta: float) -> float:
            return _power(bounds, noise, delta, scaled)
    else:
        sigma = (effect / scaled) * examples  # σ of a paired difference, in examples
        cell = simulate.Cell(examples, sigma / math.sqrt(2.0), comparisons, min_seeds, max_seeds, effect, alpha)

        def power(delta: float) -> float:
            shift = np.zeros(comparisons)
            shift[0] = delta * sigma
            found = simulate.simulate(cell, studies=STUDIES, seed=SIM_SEED, shift=shift)
            return float((found.verdict[:, 0] == sequential.BETTER).mean())

    low, high = 0.0, MAX_SIGMAS
    mdd: float | None = None
    if power(high) >= POWER:
        for _ in range(18):
            middle = (low + high) / 2.0
            low, high = (low, middle) if power(middle) >= POWER else (middle, high)
        mdd = high
    return DesignPower(
        min_seeds, max_seeds, comparisons, alpha, effect, power(2.0), mdd, sd, sd_source,
        None if sd is None else power(scaled), min_seeds,
        _first_look(bounds.difference[comparisons - 1], bounds.looks, 2),
        _first_look(bounds.equivalence, bounds.looks, 1), examples,
    )


def paired_sd(diffs: Iterable[Iterable[float]]) -> tuple[float | None, int]:
    """The pooled sd of paired differences over comparisons (each centred on its own mean) and the pairs used."""
    squares, dof, pairs = 0.0, 0, 0
    for comparison in diffs:
        d = np.asarray(list(comparison), dtype=float)
        if d.size >= 2:
            squares += float(((d - d.mean()) ** 2).sum())
            dof += d.size - 1
            pairs += d.size
    if dof == 0 or squares <= 0.0:
        return None, pairs
    return math.sqrt(squares / dof), pairs
