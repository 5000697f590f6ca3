"""Which design point a seeded ablation promotes (``--prefer``), and what promotion says about a search's winner.

Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) chooses designs by accuracy at lower cost. A
seeded grid's best design point by mean is often *not* shown better than a cheaper point (window_size 9 against
7: equivalent within ±0.02, at 17 % more FLOPs); promoting it anyway spends compute on seed noise. Two rules:

- ``cheapest`` (the default): the cheapest design point — fewest FLOPs per image, then parameters — whose
  verdict against the best by mean is *equivalent* or *better* at the study's ``search.effect`` (paired by seed,
  the study's α, seeds plan and resolution; the cheaper points form one Holm family:
  :func:`dashboards.cheaper.check`); when none is (every cheaper point worse or undecided, the best is the
  cheapest, or the study has no verdicts: no ``search.effect``, one seed, unknown costs) the best by mean. An
  undecided point is never chosen, so the rule is defined whatever the verdicts say, and it leaves the best by
  mean only when the study's own verdicts show the cheaper point is as good. It is the default because it is the
  paper's criterion and the honest reading of an "equivalent" verdict: the extra cost bought nothing shown.
- ``mean``: the best design point by mean, whatever it costs (the rule before ``--prefer`` existed).

Either way the chosen point's best seed is promoted. A *sampled* search (tpe, random, cmaes, nsga2) runs one seed
per configuration; without a confirmation round its winner is the maximum of noisy values, biased upward (the
winner's curse): promotion applies "best single trial" and says so in one line (:func:`search_notice`).
:func:`confirmed_point` is where a confirmation round's per-design-point means plug in (issue 24, items 1-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import optuna

from ..reports.load import point_info, study_info
from ..reports.views import cheaper, finalists
from ..spec.study_spec import StudySpec

PREFER_CHEAPEST = "cheapest"
PREFER_MEAN = "mean"
PREFER_RULES = (PREFER_CHEAPEST, PREFER_MEAN)
DEFAULT_PREFER = PREFER_CHEAPEST
# What ``sasa.prefer`` records besides PREFER_RULES: the rules of the designs --prefer does not apply to.
RULE_BEST_TRIAL = "best-trial"  # a search (or a one-seed grid): the best COMPLETE trial
RULE_CONFIRMED = "confirmed-mean"  # a search with a confirmation round: the best confirmed mean
RULE_PARETO = "pareto"  # two objectives
RULE_EXPLICIT = "trial"  # --trial N
SAMPLED_DESIGNS = ("tpe", "random", "cmaes", "nsga2")


@dataclass(frozen=True)
class PointChoice:
    """What the cheapest rule sees: the best point by mean, the cheapest point as good, and the evidence."""

    best: str | None
    cheapest: str | None
    why: str  # the verdicts (or their absence) behind ``cheapest``, in words


def check_prefer(prefer: object) -> str:
    """``prefer`` if it is one of :data:`PREFER_RULES`, else ``ValueError`` naming the valid values."""
    if prefer not in PREFER_RULES:
        raise ValueError(f"--prefer {prefer!r} is not valid; choose one of {', '.join(PREFER_RULES)}")
    return str(prefer)


def point_choice(study: optuna.Study, spec: StudySpec) -> PointChoice:
    """The cheapest rule's choice for ``study`` from its stored trials (:func:`dashboards.cheaper.check`)."""
    info = study_info(study, spec.resolved_dict())
    return describe(cheaper.check(point_info(study, info), info))


def describe(found: cheaper.CostCheck) -> PointChoice:
    """A :class:`PointChoice` from the dashboards' comparison of the best by mean with the cheaper points."""
    if found.best is None:
        return PointChoice(None, None, found.reason or "no design point")
    if not found.cheaper:
        return PointChoice(found.best, found.best, f"{found.best} is the cheapest design point with values")
    if found.reason is not None:
        return PointChoice(found.best, found.best, f"the cheaper design points are not compared: {found.reason}")
    verdicts = ", ".join(f"{k} {found.against_best.get(k, 'not compared')}" for k in found.cheaper)
    choice = found.cheapest
    head = (f"{choice} is the cheapest design point (FLOPs, then params) shown equivalent or better"
            if choice != found.best else "no cheaper design point is shown equivalent or better")
    return PointChoice(found.best, choice, f"{head} against the best by mean {found.best} at ±{found.effect:g} "
                                           f"(paired by seed, Holm over {len(found.cheaper)}; cheaper points, "
                                           f"cheapest first: {verdicts})")


def is_sampled(design: str) -> bool:
    """A design that samples configurations (one seed each), rather than a grid."""
    return design in SAMPLED_DESIGNS


def search_notice(design: str, complete: int, round_planned: bool = False) -> str:
    """The one line promotion prints (and writes in the version's description) for a search without a
    confirmation round, or one whose round has no confirmed value yet (``round_planned``)."""
    without = ("whose confirmation round has no confirmed value yet (rerun the study to finish it)" if round_planned
               else "without a confirmation round")
    return (f"notice: a {design} search {without} — the champion is its best single trial of "
            f"{complete} complete, selected as a maximum of one-seed values: its value is biased upward (the "
            "winner's curse) and it is not confirmed on fresh seeds; --prefer applies to seeded grids only")


def confirmed_point(confirmed_means: Mapping[str, float], direction: str) -> str:
    """A confirmation round's winner: the design point with the best confirmed mean (``{design point: mean over its
    fresh seeds}``), ranked as the finalists table ranks them (ties: the first given).
    :func:`.champion.select` takes these means as ``confirmed`` and promotes that point's best seed."""
    if not confirmed_means:
        raise ValueError("confirmed_means is empty: no finalist has a confirmed mean")
    return finalists.finalist_order(confirmed_means, direction)[0]  # the finalists table's own ranking
