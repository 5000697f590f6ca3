"""The confirmation round of a sampled study: its finalists re-run on fresh seeds.

A sampled design (tpe, random, cmaes, nsga2) ranks design points by one noisy run each (or a few seeds), so its best
point is partly luck (the winner's curse). Once the search phase is over — every sampled point drawn
(``search.n_trials``, capped by the space) and no trial of it waiting or running — :func:`finalists` picks, once,
the top ``search.confirm.finalists`` distinct design points by search-phase mean among those that completed and
were never pruned (the reference excluded), plus ``search.reference`` when one is set, and stores them on the
study (``records.STUDY_FINALISTS``). :func:`enqueue_round` then enqueues each finalist on fresh seeds — never a
seed the search used: ``max(search seeds) + 1`` onwards, ``min`` of them first — through the same exactly-once
accounting as every other trial (a (design point, seed) pair is enqueued once, and a raced duplicate steps aside in
the objective), so several workers and a resumed study run each pair once. With ``search.effect`` and adaptive
``seeds: {min, max}``, each time no confirmation trial is waiting or running the finalists' verdicts
(:mod:`dashboards.finalists`) name one more seed for every comparison still undecided, up to ``max``.

Confirmation trials carry ``records.ATTR_PHASE`` = ``confirm``: the objective never prunes them (neither the
search's pruner nor a pruned seed of the same point). The finalists table is built by
:func:`platform.reports.confirmed.finalists_of`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import optuna
from optuna.trial import TrialState

from ..records import (
    ATTR_ORIGIN,
    ATTR_PHASE,
    ATTR_POINT,
    ATTR_SEED,
    ORIGIN_SAMPLED,
    PHASE_CONFIRM,
    STUDY_FINALISTS,
    is_confirmation,
    is_done,
    pair_of,
)
from ..reports.confirmed import finalists_of
from ..reports.load import point_data
from ..reports.views import finalists as table
from ..reports.views import verdicts
from ..search import planned_points, reference_point, sampled_target
from ..spec.study_spec import StudySpec

PENDING = (TrialState.WAITING, TrialState.RUNNING)


def fresh_start(spec: StudySpec) -> int:
    """The first fresh seed: one past every seed the search phase uses."""
    return max(spec.search.initial_seeds) + 1


def fresh_seeds(spec: StudySpec) -> list[int]:
    """The confirmation round's first seeds (``confirm.seeds.min`` of them); [] without a round."""
    confirm = spec.search.confirmation
    return [] if confirm is None else list(range(fresh_start(spec), fresh_start(spec) + confirm.seeds.min))


def search_over(study: optuna.Study, spec: StudySpec) -> bool:
    """Is the search phase over: every sampled point drawn, and none of its trials waiting or running?"""
    target = sampled_target(spec)
    if target is None:
        return False  # an unbounded space without n_trials ends by timeout: no round after it
    trials = study.get_trials(deepcopy=False)
    if sum(t.user_attrs.get(ATTR_ORIGIN) == ORIGIN_SAMPLED for t in trials) < target:
        return False
    return not any(t.state in PENDING and not is_confirmation(t) and pair_of(t) for t in trials)


def choose(study: optuna.Study, spec: StudySpec) -> dict[str, Any]:
    """The finalists from the search-phase trials (see the module docstring), as stored on the study."""
    confirm = spec.search.confirmation
    assert confirm is not None
    trials = [t for t in study.get_trials(deepcopy=False) if not is_confirmation(t)]
    reference = reference_point(spec)
    points = [p for p in point_data(trials, started_only=True)
              if p.values and not p.n_pruned and (reference is None or p.key != reference.key)]
    means = {p.key: p.mean for p in points if p.mean is not None}
    chosen = table.finalist_order(means, spec.objective.direction)[: confirm.finalists]
    params = {t.user_attrs.get(ATTR_POINT): dict(t.params) for t in trials if t.params}
    return {
        "points": [{"key": key, "params": params[key], "search_value": means[key]} for key in chosen],
        "reference": None if reference is None else {"key": reference.key, "params": reference.optuna_params},
        "seeds": {"min": confirm.seeds.min, "max": confirm.seeds.max, "start": fresh_start(spec)},
        "effect": spec.search.effect,
    }


def finalists(study: optuna.Study, spec: StudySpec) -> dict[str, Any] | None:
    """The stored finalists; chosen and stored once the search phase is over; None before (or without a round)."""
    if spec.search.confirmation is None:
        return None
    stored = study.user_attrs.get(STUDY_FINALISTS)
    if stored is not None:
        return stored
    if not search_over(study, spec):
        return None
    chosen = choose(study, spec)  # deterministic given the finished search: racing workers store the same
    study.set_user_attr(STUDY_FINALISTS, chosen)
    return chosen


def entries(chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """Every design point of the round: the finalists, then the reference."""
    return [*chosen["points"], *([chosen["reference"]] if chosen.get("reference") else [])]


def enqueue_round(study: optuna.Study, spec: StudySpec) -> int:
    """Enqueue the round's missing (finalist, fresh seed) pairs and, with adaptive seeds, the next seeds of the
    comparisons still undecided; returns how many trials were enqueued."""
    chosen = finalists(study, spec)
    if not chosen or not entries(chosen):
        return 0
    trials = study.get_trials(deepcopy=False)
    covered = {pair_of(t) for t in trials if is_done(t) or t.state in PENDING}
    start, low = chosen["seeds"]["start"], chosen["seeds"]["min"]
    wanted = [(e, seed) for e in entries(chosen) for seed in range(start, start + low)]
    ours = [t for t in trials if is_confirmation(t)]
    for trial in ours:  # a confirmation trial that was interrupted or lost runs again on its seed
        if trial.state == TrialState.FAIL and (pair := pair_of(trial)) is not None and not is_done(trial):
            wanted += [(e, pair[1]) for e in entries(chosen) if e["key"] == pair[0]]
    if not any(t.state in PENDING for t in ours) and all((e["key"], s) in covered for e, s in wanted):
        more = _next_seeds(study, spec, ours, chosen)
        wanted += [(e, seed) for e in entries(chosen) for seed in more.get(e["key"], [])]
    count = 0
    for entry, seed in wanted:
        if (entry["key"], seed) in covered:
            continue
        covered.add((entry["key"], seed))
        study.enqueue_trial(entry["params"], user_attrs={ATTR_POINT: entry["key"], ATTR_SEED: seed,
                                                        ATTR_PHASE: PHASE_CONFIRM})
        count += 1
    return count


def _next_seeds(study: optuna.Study, spec: StudySpec, ours: list[optuna.trial.FrozenTrial],
                chosen: dict[str, Any]) -> dict[str, list[int]]:
    """One more fresh seed for each point of an undecided comparison (and its counterpart), up to ``max``."""
    if chosen.get("effect") is None or chosen["seeds"]["max"] <= chosen["seeds"]["min"]:
        return {}
    found = finalists_of(study, spec.resolved_dict())
    if found is None:
        return {}
    tried: dict[str, set[int]] = {}
    for trial in ours:
        if (pair := pair_of(trial)) is not None:
            tried.setdefault(pair[0], set()).add(pair[1])
    high, looking = chosen["seeds"]["max"], {}
    for i, v in enumerate([r.vs_reference for r in found.rows] + [found.best_vs_runner_up]):
        if v is not None:
            capped = max(len(tried.get(v.point, ())), len(tried.get(v.reference, ()))) >= high
            looking[str(i)] = replace(v, done=True) if capped else v
    values = {key: dict.fromkeys(seeds, 0.0) for key, seeds in tried.items()}
    return {key: [seed] for key, seed in verdicts.next_seeds(looking, values, tried=tried).items()}


def dry_run_rows(spec: StudySpec) -> list[tuple[str, int]]:
    """The confirmation round's first trials as the dry run shows them: (design point, fresh seed); the finalists
    are known only once the search has run, so they are named by rank."""
    confirm = spec.search.confirmation
    if confirm is None:
        return []
    target = sampled_target(spec)
    ranks = confirm.finalists if target is None else min(confirm.finalists, target)
    names = [f"finalist {i + 1} (by search value)" for i in range(ranks)]
    if (reference := reference_point(spec)) is not None:
        names.append(f"{reference.key} (reference)")
    return [(name, seed) for name in names for seed in fresh_seeds(spec)]


def budget_lines(spec: StudySpec) -> list[str]:
    """What the confirmation round's seeds budget resolves to (the dry run): seeds, trials at least and at most."""
    confirm = spec.search.confirmation
    if confirm is None:
        return ["confirmation round: off (search.confirm: false): the search's best values are selected, "
                "biased upward, and never re-tested"] if spec.search.design != "grid" else []
    points = planned_points(spec)
    low, high, start = confirm.seeds.min, confirm.seeds.max, fresh_start(spec)
    seeds = f"fresh seeds {start}–{start + low - 1}" if low > 1 else f"fresh seed {start}"
    lines = [f"confirmation round: {points} design point{'s' * (points != 1)} (the top {confirm.finalists} by "
             f"search value{', plus the reference' if reference_point(spec) else ''}) re-run on {seeds}, "
             f"never pruned: {points * low} trials"]
    if high > low and spec.search.effect is not None:
        lines.append(f"  then one more seed per undecided comparison up to {high} seeds (seeds up to "
                     f"{start + high - 1}; effect ±{spec.search.effect:g}): at most {points * high} trials")
    elif high > low:
        lines.append(f"  (seeds up to {high} need search.effect for verdicts; without it the round runs {low})")
    if spec.search.effect is None:
        lines.append("  no verdicts without search.effect: the finalists table shows confirmed values only")
    return lines
