"""The confirmation round's bookkeeping on a real Optuna study (in-memory storage, trials added as a finished
search would leave them): finalists chosen once the search is over, fresh seeds enqueued once each, the adaptive
next seed only for undecided comparisons, none beyond ``max``."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from platform.records import ATTR_ORIGIN, ATTR_POINT, ATTR_SEED, ORIGIN_SAMPLED, STUDY_FINALISTS, is_confirmation
from platform.search import distributions, make_point
from platform.spec import parse_spec
from platform.study.confirm import enqueue_round, finalists, search_over
from platform.study.lifecycle import progress
from tests.platform_tests.studyrun import tiny_spec

SEARCH = {"design": "random", "parameters": {"window_size": [3, 5, 7, 9]}, "seeds": [0], "n_trials": 4,
          "effect": 0.05, "reference": {"window_size": 7}, "confirm": {"finalists": 2, "seeds": {"min": 2, "max": 4}}}
SEARCH_VALUES = {3: 0.50, 5: 0.70, 9: 0.65, 7: 0.60}  # the top 2 besides the reference k=7: k=5, k=9


def _spec() -> Any:
    return parse_spec(tiny_spec("round", search=SEARCH))


def _add(study: optuna.Study, spec: Any, k: int, seed: int, value: float, **attrs: Any) -> None:
    point = make_point({"window_size": k})
    study.add_trial(optuna.trial.create_trial(
        params=point.optuna_params, distributions=distributions(spec), value=value,
        user_attrs={ATTR_POINT: point.key, ATTR_SEED: seed, **attrs}))


def _searched() -> tuple[optuna.Study, Any]:
    spec = _spec()
    study = optuna.create_study(direction="maximize")
    for k, value in SEARCH_VALUES.items():
        _add(study, spec, k, 0, value, **{ATTR_ORIGIN: ORIGIN_SAMPLED})
    return study, spec


def _waiting(study: optuna.Study) -> set[tuple[str, int]]:
    return {(t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in study.get_trials()
            if t.state == TrialState.WAITING and is_confirmation(t)}


def _finish_waiting(study: optuna.Study, values: dict[str, list[float]]) -> None:
    """Run the waiting confirmation trials: the point's next value from ``values``."""
    while (trial := next((t for t in study.get_trials() if t.state == TrialState.WAITING), None)) is not None:
        live = study.ask()
        assert live.number == trial.number
        study.tell(live, values[trial.user_attrs[ATTR_POINT]].pop(0))


def test_no_finalists_before_the_search_is_over() -> None:
    spec = _spec()
    study = optuna.create_study(direction="maximize")
    _add(study, spec, 3, 0, 0.5, **{ATTR_ORIGIN: ORIGIN_SAMPLED})
    assert not search_over(study, spec) and finalists(study, spec) is None and enqueue_round(study, spec) == 0
    assert progress(study, spec).total == 4 + 3 * 2  # the round is counted ahead: 2 finalists + reference, 2 seeds


def test_the_round_enqueues_fresh_seeds_once_then_only_undecided_comparisons_get_more() -> None:
    study, spec = _searched()
    assert enqueue_round(study, spec) == 6
    chosen = study.user_attrs[STUDY_FINALISTS]
    assert [p["key"] for p in chosen["points"]] == ["window_size=5", "window_size=9"]
    assert chosen["reference"]["key"] == "window_size=7"
    assert _waiting(study) == {(f"window_size={k}", s) for k in (5, 9, 7) for s in (1, 2)}  # never seed 0
    assert enqueue_round(study, spec) == 0  # exactly once: pending pairs are not enqueued again
    # k=5 far ahead of the reference (decided better at the first look); k=9 close to it: undecided
    _finish_waiting(study, {"window_size=5": [0.90, 0.91], "window_size=9": [0.62, 0.58],
                            "window_size=7": [0.60, 0.59]})
    added = enqueue_round(study, spec)
    assert added > 0 and all(seed == 3 for _, seed in _waiting(study)), _waiting(study)
    assert ("window_size=9", 3) in _waiting(study) and ("window_size=7", 3) in _waiting(study)
    _finish_waiting(study, {"window_size=5": [0.9] * 3, "window_size=9": [0.63, 0.57], "window_size=7": [0.61, 0.6]})
    enqueue_round(study, spec)
    _finish_waiting(study, {"window_size=5": [0.9] * 3, "window_size=9": [0.64, 0.56], "window_size=7": [0.6, 0.6]})
    assert enqueue_round(study, spec) == 0  # every comparison has tried max = 4 fresh seeds
    seeds = {t.user_attrs[ATTR_SEED] for t in study.get_trials() if is_confirmation(t)}
    assert seeds <= {1, 2, 3, 4}
