"""A seed a decision round added whose trial died (no failure reason) runs again (issue 26): a reference that
loses a round's seed to a killed process does not lose it for good; a genuine failure (with a reason) is final."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from platform.records import ATTR_FAIL, ATTR_POINT, ATTR_SEED
from platform.reports.load import point_data
from platform.spec.study_spec import StudySpec
from platform.study.lifecycle import enqueue_missing
from tests.platform_tests.studyrun import tiny_spec

REF, POINT = "window_size=3", "window_size=5"


def _spec() -> StudySpec:
    search = {"design": "grid", "parameters": {"window_size": [3, 5]}, "seeds": {"min": 2, "max": 4},
              "effect": 0.02, "reference": {"window_size": 3}}
    return StudySpec.model_validate(tiny_spec("reruns", search=search))


def _waiting(study: optuna.Study) -> set[tuple[str, int]]:
    return {(t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED])
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))}


def test_a_round_seed_that_died_is_enqueued_again_and_a_genuine_failure_is_not() -> None:
    spec, study = _spec(), optuna.create_study(storage=optuna.storages.InMemoryStorage())
    assert enqueue_missing(study, spec) == 4  # 2 points × the initial seeds 0, 1
    for _ in range(4):
        study.tell(study.ask(), 0.5)
    assert enqueue_missing(study, spec, {REF: 2, POINT: 2}) == 2  # a round's next seed for both
    for _ in range(2):
        trial = study.ask()
        if trial.user_attrs[ATTR_POINT] == POINT:
            trial.set_user_attr(ATTR_FAIL, "non-finite training loss")  # genuine: rerunning would fail again
        study.tell(trial, state=TrialState.FAIL)  # the reference's: a dead process, no reason
    assert enqueue_missing(study, spec) == 1
    assert _waiting(study) == {(REF, 2)}
    assert enqueue_missing(study, spec) == 0  # exactly once: now it is pending
    points = {p.key: p for p in point_data(study.get_trials(deepcopy=False))}
    assert points[POINT].failed_seeds == {2: "non-finite training loss"}  # what the verdicts' notes name
    assert points[REF].failed_seeds == {}  # a dead process is no loss: the seed runs again
