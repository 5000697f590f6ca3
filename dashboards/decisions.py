"""A study's comparisons and their verdicts, from its design points: shared by the report and the decision rounds.

Each design point is compared with its reference (``search.reference`` with the point's other levels kept, one
reference per slice of a multi-factor grid; the best point by mean when the spec names none) seed by seed. With
``search.effect`` the verdicts come from :func:`dashboards.verdicts.decide` (better, worse, equivalent within
±effect, undecided; group-sequential looks for adaptive seeds ``{min, max}``; a fixed list of n seeds is one look
at n). A pruned design point (any of its seeds pruned) never enters a comparison: its values are left out, but it
still counts in the Holm family so the boundaries do not move when a point is pruned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import power, resolution, stats, verdicts
from .data import PointData, StudyInfo, best_key


@dataclass(frozen=True)
class SeedPlan:
    """The search section's seeds as the verdicts see them."""

    effect: float | None
    min_seeds: int
    max_seeds: int
    adaptive: bool


def seed_plan(search: Mapping[str, Any]) -> SeedPlan:
    """From a resolved ``search`` section: a list of n seeds is (n, n); ``{min, max}`` is adaptive."""
    seeds = search.get("seeds") or [0]
    effect = search.get("effect")
    if isinstance(seeds, Mapping):
        return SeedPlan(effect, int(seeds["min"]), int(seeds["max"]), True)
    return SeedPlan(effect, len(seeds), len(seeds), False)


def reference_keys(points: Sequence[PointData], info: StudyInfo) -> tuple[dict[str, str | None], str]:
    """Each point's reference point (itself for a reference point) and how the reference was chosen."""
    if not info.reference:
        best = best_key(points, info.direction)
        return {p.key: best for p in points}, "the best design point by mean (the spec sets no search.reference)"
    wanted = dict(info.reference_levels or {})
    by_level = {tuple(sorted(p.level.items())): p.key for p in points}
    refs = {p.key: by_level.get(tuple(sorted({**p.level, **wanted}.items()))) for p in points}
    shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
    return refs, f"search.reference ({shown})"


def examples_of(info: StudyInfo) -> int | None:
    """N when the study's metric is a fraction of N recorded examples (accuracy over the validation split)."""
    return resolution.examples_behind(info.metric, info.examples)


def is_pruned(point: PointData) -> bool:
    """A design point is pruned as a whole as soon as one of its seeds was pruned."""
    return point.n_pruned > 0


def confirms(search: Mapping[str, Any]) -> bool:
    """A sampled design with its confirmation round (on unless ``confirm: false``): its verdicts are the
    finalists' (:mod:`.finalists`), not comparisons of the search's own runs."""
    confirm = search.get("confirm")
    return search.get("design", "grid") != "grid" and not (isinstance(confirm, Mapping) and
                                                          confirm.get("enabled") is False)


def no_verdicts_reason(search: Mapping[str, Any]) -> str | None:
    """Why a study with ``search.effect`` gets no verdicts at all (one seed), else None: said by the dry run, at
    the start, by the end-of-study summary and by every report."""
    plan = seed_plan(search)
    if plan.effect is None or plan.max_seeds >= 2 or confirms(search):
        return None
    return (f"no verdicts: search.effect is set but the study runs {plan.max_seeds} seed, and a paired test needs "
            "at least 2 paired seeds (the table shows each point's value; for verdicts use e.g. "
            "search.seeds: [0, 1, 2] or {min: 3, max: 10})")


def study_verdicts(points: Sequence[PointData], info: StudyInfo,
                   refs: Mapping[str, str | None] | None = None) -> dict[str, verdicts.Verdict]:
    """One :class:`~dashboards.verdicts.Verdict` per comparison whose two points are not pruned; {} without effect
    or with one seed (:func:`no_verdicts_reason`)."""
    plan = seed_plan(info.spec.get("search", {}))
    if plan.effect is None or no_verdicts_reason(info.spec.get("search", {})) is not None \
            or confirms(info.spec.get("search", {})):
        return {}
    refs = reference_keys(points, info)[0] if refs is None else refs
    comparisons = {k: r for k, r in refs.items() if r is not None and r != k}
    if not comparisons:
        return {}
    values = {p.key: dict(p.values) for p in points if not is_pruned(p)}
    usable = {k: r for k, r in comparisons.items() if k in values and r in values}
    if not usable:
        return {}
    involved = {name: values[name] for name in {*usable, *usable.values()}}
    return verdicts.decide(involved, usable, effect=float(plan.effect), direction=info.direction,
                           min_seeds=plan.min_seeds, max_seeds=plan.max_seeds,
                           bounds=stats.metric_bounds(info.metric), family=len(comparisons),
                           examples=examples_of(info),
                           failed={p.key: p.failed_seeds for p in points if p.failed_seeds})


def lost_seed_notes(found: Mapping[str, verdicts.Verdict]) -> list[str]:
    """One line per comparison that lost seeds for good: which, why, and where its comparison ended (the report's
    notes and the end-of-study summary)."""
    return [f"{v.point} vs {v.reference}: {v.note}" for v in found.values() if v.missing]


def study_power(points: Sequence[PointData], info: StudyInfo,
                refs: Mapping[str, str | None] | None = None) -> power.DesignPower | None:
    """What the study's seeds budget can decide (:mod:`.power`), σ from its complete trials when they pair up;
    None without ``search.effect``, without comparisons or with fewer than 2 seeds."""
    plan = seed_plan(info.spec.get("search", {}))
    if plan.effect is None or plan.max_seeds < 2:
        return None
    refs = reference_keys(points, info)[0] if refs is None else refs
    comparisons = {k: r for k, r in refs.items() if r is not None and r != k}
    if not comparisons:
        return None
    values, _ = resolution.snap({p.key: p.values for p in points if not is_pruned(p)}, examples_of(info))
    sd, pairs = power.paired_sd(stats.pair_by_seed(values[k], values[r])[1] for k, r in comparisons.items()
                                if k in values and r in values)
    source = f"the study's trials ({pairs} paired seeds)" if sd is not None else \
        "no paired trials yet" if pairs == 0 else "the trials so far show no spread"
    return power.design_power(min_seeds=max(plan.min_seeds, 2), max_seeds=plan.max_seeds,
                              comparisons=len(comparisons), effect=float(plan.effect), sd=sd, sd_source=source,
                              examples=examples_of(info))


def delta_interval(level: Mapping[int, float], reference: Mapping[int, float],
                   metric: str) -> tuple[float | None, float | None]:
    """The paired 95 % t interval of Δ = level − reference (without ``effect``), clipped to Δ's possible range."""
    _, diffs = stats.pair_by_seed(level, reference)
    summary = stats.describe(diffs, bounds=stats.difference_bounds(stats.metric_bounds(metric)))
    return summary.ci_low, summary.ci_high
