"""Is the best design point by mean better than the cheaper ones? The "accuracy at lower cost" question.

Stand-Alone Self-Attention (Ramachandran et al., 2019) chooses its designs by accuracy *at a cost*: a wider window
that costs 17 % more FLOPs is worth it only if it is shown better. A study's table compares every point with its
reference; this module compares the best point by mean with every design point that is cheaper than it — lower
FLOPs per image, then fewer parameters — paired by seed, with the study's own rule (:func:`.verdicts.decide`: the
study's ``search.effect``, α, seeds plan and resolution; the cheaper points form one Holm family). Δ = cheaper −
best, so a cheaper point's verdict reads "worse" when the best is shown better than it.

The *cheapest rule* (``python -m platform.promote --prefer cheapest``, :func:`cheapest_choice`): the cheapest
design point whose verdict against the best by mean is *equivalent* or *better* (shown within ±effect of it, or
above it), else the best by mean itself. An *undecided* cheaper point is never chosen (too few seeds to show it
is as good), so the rule is defined whatever the verdicts are; without verdicts (no ``search.effect``, one seed,
unknown costs) it is the best by mean. The report's sentence (:func:`cheaper_line`) names the cheaper points the
best is *not* decided better than.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import decisions, stats, verdicts
from .data import PointData, StudyInfo, best_key

AS_GOOD = ("equivalent", "better")  # a cheaper point's verdicts against the best that let the cheapest rule pick it
Cost = tuple[float, float]  # (FLOPs per image, parameters); unknown parts read as +inf


@dataclass(frozen=True)
class CostCheck:
    """The best point by mean, the points cheaper than it (cheapest first) and their verdicts against it."""

    best: str | None
    cheaper: tuple[str, ...] = ()
    against_best: dict[str, str] = field(default_factory=dict)  # cheaper point -> its verdict word vs the best
    costs: dict[str, Cost] = field(default_factory=dict)
    effect: float | None = None
    reason: str | None = None  # why no comparison was made (no verdicts, unknown cost), else None

    @property
    def cheapest(self) -> str | None:
        """The design point the cheapest rule chooses (:func:`cheapest_choice`)."""
        return cheapest_choice(self.best, self.cheaper, self.against_best)


def cost_of(point: PointData) -> Cost | None:
    """(FLOPs, params) of a design point; None when neither is known."""
    if point.flops is None and point.params is None:
        return None
    inf = float("inf")
    return (inf if point.flops is None else float(point.flops), inf if point.params is None else float(point.params))


def cheaper_than(best: str, costs: Mapping[str, Cost]) -> list[str]:
    """The points strictly cheaper than ``best`` (FLOPs, then params), cheapest first (ties: key order)."""
    mine = costs[best]
    return sorted((k for k, c in costs.items() if k != best and c < mine), key=lambda k: (costs[k], k))


def cheapest_choice(best: str | None, cheaper: Sequence[str], against_best: Mapping[str, str]) -> str | None:
    """The cheapest point of ``cheaper`` (cheapest first) whose verdict against ``best`` is equivalent or better;
    ``best`` when there is none (undecided or worse points are never chosen)."""
    return next((k for k in cheaper if against_best.get(k) in AS_GOOD), best)


def check(points: Sequence[PointData], info: StudyInfo) -> CostCheck:
    """Compare the best point by mean with every cheaper, unpruned design point that has values."""
    best = best_key(points, info.direction)
    if best is None:
        return CostCheck(best=None, reason="no design point has a complete trial")
    plan = decisions.seed_plan(info.spec.get("search", {}))
    costs = {p.key: c for p in points if (c := cost_of(p)) is not None}
    if best not in costs:
        return CostCheck(best=best, reason=f"the cost of {best} (FLOPs, params) is not recorded")
    by_key = {p.key: p for p in points}
    cheaper = tuple(k for k in cheaper_than(best, costs) if by_key[k].values and not decisions.is_pruned(by_key[k]))
    if not cheaper:
        return CostCheck(best=best, costs=costs, effect=plan.effect)
    reason = decisions.no_verdicts_reason(info.spec.get("search", {}))
    if plan.effect is None:
        reason = "no verdicts without search.effect"
    if reason is not None:
        return CostCheck(best=best, cheaper=cheaper, costs=costs, reason=reason)
    values = {k: dict(by_key[k].values) for k in (*cheaper, best)}
    found = verdicts.decide(values, dict.fromkeys(cheaper, best), effect=float(plan.effect),
                            direction=info.direction, min_seeds=plan.min_seeds, max_seeds=plan.max_seeds,
                            bounds=stats.metric_bounds(info.metric), examples=decisions.examples_of(info),
                            failed={k: by_key[k].failed_seeds for k in values if by_key[k].failed_seeds})
    return CostCheck(best=best, cheaper=cheaper, against_best={k: v.verdict for k, v in found.items()},
                     costs=costs, effect=float(plan.effect))


def _fewer(cost: Cost, best: Cost) -> str:
    if cost[0] < best[0] and best[0] not in (0.0, float("inf")):
        return f"{100.0 * (1.0 - cost[0] / best[0]):.0f} % fewer FLOPs"
    if best[1] not in (0.0, float("inf")):
        return f"{100.0 * (1.0 - cost[1] / best[1]):.0f} % fewer parameters"
    return "cheaper"


def cheaper_line(found: CostCheck, *, labels: Mapping[str, str] | None = None) -> str | None:
    """The sentence after the best-mean line: which cheaper points the best is not decided better than, and what
    ``--prefer cheapest`` picks; None when nothing cheaper was compared (no verdicts: the best-mean line already
    says "by mean only")."""
    if found.best is None or not found.cheaper or found.reason is not None:
        return None
    name = (labels or {}).get
    best = name(found.best, found.best)
    open_ = [k for k in found.cheaper if found.against_best.get(k) != "worse"]
    if not open_:
        return f"{best} is decided better than every cheaper design point ({len(found.cheaper)})."
    listed = ", ".join(f"{name(k, k)} ({found.against_best.get(k, 'not compared')}, "
                       f"{_fewer(found.costs[k], found.costs[found.best])})" for k in open_)
    choice = found.cheapest
    pick = (f"the cheapest shown within ±{found.effect:g} of it is {name(choice, choice)}, which "
            "`--prefer cheapest` promotes" if choice != found.best else
            f"none is shown within ±{found.effect:g} of it yet, so `--prefer cheapest` keeps {best}")
    return f"{best} is not decided better than cheaper {listed}; {pick}."
