"""Verdicts of an ablation that spends seeds adaptively: better, worse, equivalent or undecided; seeds needed.

Pure functions of the objective values of COMPLETE trials (``{design point: {seed: value}}``; the caller leaves
out pruned points): numpy and scipy only. The statistics (group-sequential paired t-tests with alpha spending,
Holm, TOST) live in :mod:`dashboards.sequential`; this module turns them into one :class:`Verdict` per
comparison (:func:`decide`), says which design points get one more seed (:func:`next_seeds`) and how many seeds a
comparison needs (:func:`seeds_needed`).

- **better / worse**: the paired t-test of level − reference (seed s against seed s; seeds missing on either side
  are left out) crossed its group-sequential boundary at the comparison's Holm level; direction-aware.
- **equivalent**: both one-sided paired tests of TOST rejected |Δ| ≥ ``effect`` at their boundaries, i.e. the
  difference is shown to lie within ±effect. A comparison that is both significantly different and within
  ±effect reads better/worse (the difference test is checked first; ``p_equivalence`` still shows the TOST).
- **identical** (shown as the verdict *equivalent*, test ``identical``): every paired value equal at the values'
  resolution (:mod:`.resolution`: k/N for an accuracy over N examples, else float32) on enough seeds that a true
  difference of ±effect would rarely give that (:mod:`.ties`); it usually means the design parameter does not
  reach training. Fewer identical seeds stay undecided and ask for more, like any other comparison.
- **undecided**: neither yet. ``done`` is True once decided, at ``max_seeds`` paired seeds, or when no more
  pairs can come (a seed failed for good on either side: ``failed``; its last look is on the pairs there are and
  its note names the lost seeds); a comparison that is undecided at max seeds stays undecided — the data cannot
  tell a difference of ``effect`` from none, and ``seeds_needed`` says how many seeds would.
- Δ's interval is the ordinary paired t interval (95 %) at the look reported, clipped to the range of a
  difference of the metric; it is not widened for the repeated looks (the verdict is).
- Power (fixed-sample, noncentral t): the smallest n with 80 % power for a two-sided paired t-test at α / m
  (m comparisons: Holm's first step) to detect a true difference of ±effect, and for TOST at α to show
  equivalence when the true difference is 0 (using the bound P(both sides) ≥ P(side 1) + P(side 2) − 1);
  ``seeds_needed`` is the larger, from the standard deviation of the paired differences observed so far (None
  below 2 pairs or with zero spread; above ``SEEDS_CAP`` it reports ``SEEDS_CAP + 1``, shown as "> 100"). The
  sequential boundaries are stricter than a fixed-sample test at the last look, so it is a slight underestimate.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from . import resolution, sequential, stats, ties

VERDICTS = ("better", "worse", "equivalent", "undecided")
CODE_NAMES = {sequential.UNDECIDED: "undecided", sequential.BETTER: "better", sequential.WORSE: "worse",
          sequential.EQUIVALENT: "equivalent"}
POWER = 0.8
SEEDS_CAP = 100
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Verdict:
    """One comparison of ``point`` with ``reference`` (Δ = point − reference, in objective units)."""

    point: str
    reference: str
    verdict: str  # one of VERDICTS
    test: str | None  # what decided: "ttest" / "sign" (difference), "tost" / "tost-sign" / "identical"
    #                   (equivalence), None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # two-sided paired difference test at the look reported
    p_boundary: float | None  # its group-sequential threshold there (Holm level included)
    p_equivalence: float | None  # TOST: the larger one-sided p-value
    eq_boundary: float | None
    n: int  # paired seeds at the look reported (the deciding look, else the last)
    seeds_needed: int | None
    done: bool
    note: str = ""
    missing: str = ""  # seeds of either side that failed for good, and why (also in ``note``)


def _power_curve(sd: float, effect: float, alpha: float, cap: int, equivalence: bool) -> tuple[np.ndarray, ...]:
    n = np.arange(2, cap + 1)
    df = n - 1
    ncp = effect * np.sqrt(n) / sd
    if equivalence:
        critical = sps.t.isf(alpha, df)
        power = np.clip(2.0 * sps.nct.sf(critical, df, ncp) - 1.0, 0.0, 1.0)
    else:
        critical = sps.t.isf(alpha / 2.0, df)
        power = sps.nct.sf(critical, df, ncp) + sps.nct.cdf(-critical, df, ncp)
    return n, power


def _first(n: np.ndarray, power: np.ndarray, target: float, cap: int) -> int:
    reached = np.nonzero(power >= target)[0]
    return int(n[reached[0]]) if reached.size else cap + 1


def _check_power_args(sd: float | None, effect: float, alpha: float, power: float) -> bool:
    if not (effect > 0 and math.isfinite(effect)):
        raise ValueError(f"effect={effect!r} is not valid; it must be a positive number in objective units")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r} is not valid; it must lie in (0, 1)")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power={power!r} is not valid; it must lie in (0, 1), e.g. 0.8")
    return sd is not None and math.isfinite(sd) and sd > 0


def seeds_for_difference(sd: float | None, effect: float, alpha: float, power: float = POWER,
                         cap: int = SEEDS_CAP) -> int | None:
    """Paired seeds for a two-sided paired t-test at ``alpha`` to detect Δ = ±effect with ``power``."""
    if not _check_power_args(sd, effect, alpha, power):
        return None
    return _first(*_power_curve(float(sd), effect, alpha, cap, False), power, cap)


def seeds_for_equivalence(sd: float | None, effect: float, alpha: float, power: float = POWER,
                          cap: int = SEEDS_CAP) -> int | None:
    """Paired seeds for TOST at ``alpha`` to show |Δ| < effect with ``power`` when the true Δ is 0."""
    if not _check_power_args(sd, effect, alpha, power):
        return None
    return _first(*_power_curve(float(sd), effect, alpha, cap, True), power, cap)


def seeds_needed(diffs: Iterable[float], effect: float, alpha: float = stats.ALPHA, comparisons: int = 1,
                 power: float = POWER, cap: int = SEEDS_CAP, step: float = 0.0) -> int | None:
    """Seeds for a verdict either way (see the module docstring), from observed paired differences; ``step``: the
    resolution of a difference (a spread below half of it is none; the sd is floored at step/√6)."""
    data = np.asarray(list(diffs), dtype=float)
    scale = max(1.0, float(np.max(np.abs(data)))) if data.size else 1.0
    tie = max(step / 2.0, sequential.RELATIVE_TIE * scale)
    resolved = data.size >= 2 and float(np.ptp(data)) >= tie
    sd = max(float(data.std(ddof=1)), step / math.sqrt(6.0)) if resolved else None
    needed = [seeds_for_difference(sd, effect, alpha / max(comparisons, 1), power, cap),
              seeds_for_equivalence(sd, effect, alpha, power, cap)]
    return None if None in needed else max(n for n in needed if n is not None)


def seeds_label(n: int | None, cap: int = SEEDS_CAP) -> str:
    """How the "seeds needed" column shows ``n``: "—" when unknown, "> cap" beyond the cap."""
    return "—" if n is None else f"> {cap}" if n > cap else str(n)


def _references(values: Mapping[str, Mapping[int, float]], reference: str | Mapping[str, str | None]
                ) -> dict[str, str]:
    if isinstance(reference, str):
        if reference not in values:
            raise ValueError(f"reference={reference!r} is not a design point; choose one of {', '.join(values)}")
        return {point: reference for point in values if point != reference}
    refs = {point: ref for point, ref in reference.items() if ref is not None and ref != point}
    for point, ref in refs.items():
        for name in (point, ref):
            if name not in values:
                raise ValueError(f"reference names {name!r}, which is not a design point; "
                                 f"choose among {', '.join(values)}")
    return refs


def _check_values(values_by_point: Mapping[str, Mapping[int, float]]) -> None:
    for point, seeds in values_by_point.items():
        for seed, value in seeds.items():
            number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
            if number is None or not math.isfinite(number):
                raise ValueError(f"the trial of design point {point!r}, seed {seed} has objective value {value!r}; "
                                 "need a finite number (pass the objective values of COMPLETE trials only)")


def decide(values_by_point: Mapping[str, Mapping[int, float]], reference: str | Mapping[str, str | None], *,
           effect: float, alpha: float = stats.ALPHA, direction: str = "maximize", min_seeds: int,
           max_seeds: int, bounds: stats.Bounds | None = None, spending: str = "pocock",
           confidence: float = stats.CONFIDENCE, family: int | None = None,
           examples: int | None = None, failed: Mapping[str, Mapping[int, str]] | None = None
           ) -> dict[str, Verdict]:
    """One verdict per comparison, replaying the looks n = min_seeds … max_seeds on the seeds in order.

    ``reference``: the reference point of every other point, or ``{point: its reference}`` (one per slice of a
    multi-factor grid; all comparisons form one Holm family). ``bounds``: the metric's range
    (:func:`dashboards.stats.metric_bounds`) for clipping Δ's interval. A fixed seed list is the case
    min_seeds = max_seeds = its length: one look, a plain paired t-test with Holm and TOST. ``family``: the Holm
    family size, by default the comparisons given; pass the design's number of comparisons when some points are
    left out (pruned) so that the boundaries, and so the replayed verdicts, do not change between rounds.
    ``examples``: N when the metric is a fraction of N examples (accuracy over the validation split): values are
    read as the k/N they stand for, ties judged at 1/N and the margin compared in whole examples
    (:mod:`.resolution`); else at float32's resolution. ``failed``: ``{point: {seed: reason}}``, seeds that failed
    for good (never rerun). A comparison whose point and reference have both settled ``max_seeds`` seeds (values
    plus failures) gets no more pairs: its last look is on the pairs it has (:func:`.sequential_decisions`'
    ``final``), and its note names the missing seeds.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} is not valid; choose one of {', '.join(DIRECTIONS)}")
    _check_power_args(None, effect, alpha, POWER)
    _check_values(values_by_point)
    refs = _references(values_by_point, reference)
    if not refs:
        return {}
    family = len(refs) if family is None else family
    if not (isinstance(family, int) and family >= len(refs)):
        raise ValueError(f"family={family!r} is not valid; it must be an integer ≥ the {len(refs)} comparisons")
    boundaries = sequential.boundaries(min_seeds, max_seeds, alpha, family, spending)
    failed = failed or {}
    involved = {name: values_by_point[name] for name in {*refs, *refs.values()}}
    snapped, res = resolution.snap(involved, examples)
    pairs = {point: stats.pair_by_seed(snapped[point], snapped[ref])[1] for point, ref in refs.items()}
    settled = {name: set(values_by_point[name]) | set(failed.get(name, {})) for name in involved}
    diffs = np.zeros((1, len(refs), max_seeds))  # (study, comparison, seed in order)
    available = np.zeros((1, len(refs)), dtype=int)
    final = np.zeros((1, len(refs)), dtype=bool)
    for j, (point, ref) in enumerate(refs.items()):
        d = pairs[point]
        available[0, j] = min(d.size, max_seeds)
        diffs[0, j, : available[0, j]] = d[:max_seeds]
        final[0, j] = min(len(settled[point]), len(settled[ref])) >= max_seeds
    sign = 1 if direction == "maximize" else -1
    result = sequential.sequential_decisions(diffs, available, effect=effect, sign=sign, bounds=boundaries,
                                             family=family, resolution=res.step, counts=res.examples is not None,
                                             final=final)
    delta_bounds = stats.difference_bounds(bounds)
    steps = effect / res.step if res.step > 0 else math.inf
    verdicts = {}
    for j, (point, ref) in enumerate(refs.items()):
        code, n, degenerate = int(result.verdict[0, j]), int(result.n[0, j]), bool(result.degenerate[0, j])
        identical = bool(result.identical[0, j])
        used = pairs[point][:n]
        summary = stats.describe(used, confidence, delta_bounds, var_floor=res.step**2 / 6.0)
        name = CODE_NAMES[code]
        test = None
        if name in ("better", "worse"):
            test = "sign" if degenerate else "ttest"
        elif name == "equivalent":
            test = "identical" if identical else "tost-sign" if degenerate else "tost"
        ended = bool(final[0, j])
        done = name != "undecided" or pairs[point].size >= max_seeds or ended
        needed = seeds_needed(used, effect, alpha, family, step=res.step)
        sign_seeds = sequential.sign_test_seeds(alpha / family) or SEEDS_CAP + 1
        identical_seeds = _identical_seeds(steps, boundaries)
        if identical and name == "undecided":  # only identical results so far: when they would show equivalence
            needed = identical_seeds
        elif degenerate and not identical:  # only the signs count: the sign test's own seed count
            needed = sign_seeds
        missing = _missing(point, ref, values_by_point, failed)
        note = _note(name, n, pairs[point].size, identical, degenerate, res, min_seeds=min_seeds,
                     max_seeds=max_seeds, effect=effect, sign_seeds=sign_seeds, identical_seeds=identical_seeds,
                     ended=ended)
        verdicts[point] = Verdict(
            point, ref, name, test, summary.mean, summary.ci_low, summary.ci_high,
            *(_number(getattr(result, f)[0, j]) for f in ("p_value", "p_boundary", "p_equivalence", "eq_boundary")),
            n, needed, done, "; ".join(part for part in (note, missing) if part), missing)
    return verdicts


def _identical_seeds(steps: float, bounds: sequential.Boundaries) -> int:
    """The first look at which identical pairs show equivalence (their p below the TOST boundary)."""
    for n, threshold in zip(bounds.looks, bounds.equivalence, strict=True):
        if float(ties.identical_p(steps, n)) < threshold:
            return int(n)
    return SEEDS_CAP + 1


def _missing(point: str, ref: str, values_by_point: Mapping[str, Mapping[int, float]],
             failed: Mapping[str, Mapping[int, str]]) -> str:
    """Which seeds of the comparison failed for good, on either side, and why (the first reason of each side)."""
    parts = []
    for role, name in (("reference", ref), ("design point", point)):
        lost = {s: r for s, r in failed.get(name, {}).items() if s not in values_by_point[name]}
        if lost:
            seeds = ", ".join(str(s) for s in sorted(lost))
            reason = next(iter(lost.values()))
            parts.append(f"{role} {name} lost seed{'s' if len(lost) > 1 else ''} {seeds} ({reason})")
    return "; ".join(parts)


def _note(name: str, n: int, pairs: int, identical: bool, degenerate: bool, res: resolution.Resolution, *,
          min_seeds: int, max_seeds: int, effect: float, sign_seeds: int, identical_seeds: int,
          ended: bool) -> str:
    if pairs > max_seeds:
        return f"{pairs - max_seeds} paired seeds beyond max_seeds={max_seeds} not used"
    if ended and pairs < max_seeds and name == "undecided":
        if pairs < 2:
            return f"{pairs} paired seed{'s' if pairs != 1 else ''} and no more to come: too few to test"
        return (f"undecided at the last look, on the {pairs} paired seeds there are (max seeds {max_seeds}): "
                f"neither a difference nor equivalence within ±{effect:g}")
    if ended and pairs < max_seeds and n == pairs:
        return f"decided at a last look on the {pairs} paired seeds there are (max seeds {max_seeds})"
    if ended and pairs < max_seeds:  # decided at an ordinary look, before the seeds ran out
        return f"decided at {n} paired seeds"
    if name == "undecided" and n < min_seeds:
        return f"{n} paired seed{'s' if n != 1 else ''}; the first look is at {min_seeds}"
    if identical and name == "undecided":
        return (f"identical on every seed so far (at the resolution {res.label()}), but a true difference of "
                f"±{effect:g} gives identical results too often at this resolution: identical results "
                + (f"show equivalence from {identical_seeds} seeds" if identical_seeds <= SEEDS_CAP
                   else f"never show equivalence within {SEEDS_CAP} seeds"))
    if identical:
        return (f"identical on every seed (at the resolution {res.label()}): the design parameter may not "
                "reach training")
    if degenerate and name == "undecided":
        return (f"the same difference on every seed (at the resolution {res.label()}): no spread to test, so "
                f"only the signs count (exact sign test: ≥ {sign_seeds} seeds to decide)")
    if name == "undecided" and pairs >= max_seeds:
        return f"undecided at max seeds ({max_seeds}): neither a difference nor equivalence within ±{effect:g}"
    return ""


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def next_seeds(verdicts: Mapping[str, Verdict], values_by_point: Mapping[str, Mapping[int, float]], *,
               tried: Mapping[str, Iterable[int]] | None = None) -> dict[str, int]:
    """The seed each design point gets next: one more for every comparison not ``done`` and for its reference.

    Per reference, the new seed is the next integer after every seed the reference or its open comparisons have
    (values of complete trials, plus ``tried``: seeds enqueued in any state, so a failed seed is never enqueued
    twice). Call it after a round's trials have all finished; {} means every comparison is done.
    """
    tried = tried or {}
    open_by_ref: dict[str, list[str]] = {}
    for verdict in verdicts.values():
        if not verdict.done:
            open_by_ref.setdefault(verdict.reference, []).append(verdict.point)
    chosen: dict[str, int] = {}
    for ref, points in open_by_ref.items():
        group = [ref, *points]
        had = {p: set(values_by_point.get(p, {})) | set(tried.get(p, ())) for p in group}
        seed = 1 + max((s for seeds in had.values() for s in seeds), default=-1)
        for point in group:
            if seed not in had[point]:
                chosen[point] = seed
    return chosen
