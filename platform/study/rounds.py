"""Adaptive seeds: decision rounds that give one more seed only to the comparisons still undecided.

With ``search.seeds: {min, max}`` (grid designs) every design point first runs seeds 0 … min−1. Each time no
trial of the design is waiting or running, :func:`decide_round` computes the verdicts of every comparison with
its reference (:mod:`dashboards.decisions`: the same verdicts the report shows; repeated looks are
alpha-spent there) and :func:`dashboards.verdicts.next_seeds` names the next seed (the next integer) of each point
whose comparison is still undecided, and of its reference. The seeds are enqueued through the study's
exactly-once machinery (:func:`.lifecycle.enqueue_missing`), so several workers, or a resumed study, that decide
the same round enqueue each (design point, seed) once. Rounds stop when every comparison is decided, a point
has tried ``max`` seeds, or ``search.max_trials`` would be passed (``search.timeout`` stops the study as usual).

Each round is recorded once: on the study (``records.STUDY_ROUNDS``) and on the MLflow parent run (metrics
``decisions/<verdict>`` and ``decisions/enqueued`` at step = round, and ``decisions/round-NN.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from ..records import METRIC_DECISIONS_PREFIX, METRIC_ENQUEUED, STUDY_ROUNDS, is_done, pair_of
from ..reports.load import point_info, study_info
from ..reports.views import decisions, verdicts
from ..search import grid_points
from ..spec.study_spec import StudySpec
from .tracking import Tracker


@dataclass(frozen=True)
class DecisionRound:
    """One look at the comparisons: its number (1 = the look at ``min`` seeds), verdicts, and the seeds added."""

    number: int
    done_pairs: int
    verdicts: dict[str, verdicts.Verdict]
    enqueued: dict[str, int]

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary (stored on the study and the parent run)."""
        return {
            "round": self.number, "done_pairs": self.done_pairs, "enqueued": dict(self.enqueued),
            "verdicts": {k: {"reference": v.reference, "verdict": v.verdict, "test": v.test, "delta": v.delta,
                             "ci": [v.ci_low, v.ci_high], "p": v.p_value, "p_threshold": v.p_boundary,
                             "p_equivalence": v.p_equivalence, "n": v.n, "seeds_needed": v.seeds_needed,
                             "done": v.done, "note": v.note} for k, v in self.verdicts.items()},
        }


def decide_round(study: optuna.Study, spec: StudySpec) -> DecisionRound | None:
    """The current round's verdicts and next seeds, or None while trials of the design are waiting or running
    (or the initial seeds are not all done, or seeds are not adaptive)."""
    search = spec.search
    if not search.adaptive or search.design != "grid":
        return None
    trials = study.get_trials(deepcopy=False)
    if any(t.state in (TrialState.WAITING, TrialState.RUNNING) and pair_of(t) for t in trials):
        return None
    done = {pair_of(t) for t in trials if is_done(t)} - {None}
    if any((point.key, seed) not in done for point in grid_points(spec) for seed in search.initial_seeds):
        return None  # the initial seeds come first (enqueue_missing's job)
    tried: dict[str, set[int]] = {}
    for trial in trials:
        if (pair := pair_of(trial)) is not None:
            tried.setdefault(pair[0], set()).add(pair[1])
    info = study_info(study, spec.resolved_dict())
    points = point_info(study, info)
    decided = decisions.study_verdicts(points, info)
    min_seeds, max_seeds = search.seed_bounds
    # A point that has tried max seeds (some failed) gets no more: its comparison ends as it stands.
    looking = {k: v if len(tried.get(k, ())) < max_seeds else replace(v, done=True) for k, v in decided.items()}
    chosen = verdicts.next_seeds(looking, {p.key: p.values for p in points}, tried=tried)
    if search.max_trials is not None and len(done) + len(chosen) > search.max_trials:
        chosen = {}
    number = max((len(seeds) for seeds in tried.values()), default=min_seeds) - min_seeds + 1
    return DecisionRound(number, len(done), decided, chosen)


def run_round(study: optuna.Study, spec: StudySpec, tracker: Tracker, parent_run: str, *,
              enqueue: Callable[[dict[str, int]], int]) -> DecisionRound | None:
    """Decide, enqueue the next seeds (``enqueue``: the study's exactly-once enqueueing of {point key: seed},
    :func:`.lifecycle.enqueue_missing`), and record the round the first time it is seen."""
    found = decide_round(study, spec)
    if found is None:
        return None
    if found.enqueued:
        enqueue(found.enqueued)
    history = list(study.user_attrs.get(STUDY_ROUNDS) or [])
    if any(r.get("done_pairs") == found.done_pairs for r in history):
        return found  # already recorded (another worker, or an earlier housekeeping call)
    record = found.record()
    study.set_user_attr(STUDY_ROUNDS, [*history, record])
    counts = {METRIC_DECISIONS_PREFIX + name: sum(v.verdict == name for v in found.verdicts.values())
              for name in verdicts.VERDICTS}
    tracker.log_metrics(parent_run, {**counts, METRIC_ENQUEUED: len(found.enqueued)}, step=found.number)
    tracker.client.log_dict(parent_run, record, f"decisions/round-{found.number:02d}.json")
    return found
