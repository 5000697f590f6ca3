"""The patient Optuna storage (``stores.patient_storage``) on a real SQLite database: Optuna's own look for stale
trials, at the start of every trial, fails no live trial right after a database outage."""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import TrialState
from sqlalchemy import text

from platform.stores.connect import open_storage


def _study_with_a_silent_trial(tmp_path):
    """A study holding one RUNNING trial of "another worker" whose last heartbeat is an hour old."""
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    storage.patience.say = lambda line: None
    study = optuna.create_study(study_name="s", storage=storage)
    with warnings.catch_warnings():  # "another worker" asks outside optimize: Optuna warns about its heartbeat
        warnings.simplefilter("ignore", UserWarning)
        other = study.ask()
    storage.record_heartbeat(other._trial_id)
    with storage.engine.begin() as connection:  # its beats could not reach the database (the outage)
        connection.execute(text("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')"))
    return storage, study, other._trial_id


def _state(study: optuna.Study, trial_id: int) -> TrialState:
    return study._storage.get_trial(trial_id).state


def test_a_trial_started_right_after_an_outage_fails_no_other_workers_trial(tmp_path) -> None:
    storage, study, other = _study_with_a_silent_trial(tmp_path)
    storage.patience.failed("infrastructure: connection refused")
    storage.patience.answered()  # the database is back, moments ago
    study.optimize(lambda trial: 1.0, n_trials=1)
    assert _state(study, other) == TrialState.RUNNING, "a live trial was failed for beats the outage swallowed"
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 1


def test_without_an_outage_a_silent_trial_is_failed_as_before(tmp_path) -> None:
    _, study, other = _study_with_a_silent_trial(tmp_path)
    study.optimize(lambda trial: 1.0, n_trials=1)
    assert _state(study, other) == TrialState.FAIL
