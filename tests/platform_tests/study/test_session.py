"""The trial loop (``study.session.optimize``) on a real SQLite Optuna storage: a storage that gives up while
Optuna records a trial stops the study with the clean :class:`StoreOutageError` (exit 75), not with the
``UnboundLocalError`` Optuna's ``tell`` raises while cleaning up after it."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from platform.spec.study_spec import load_spec
from platform.stores.connect import open_storage
from platform.stores.faults import StoreOutageError, infrastructure_error
from platform.study.session import Session, optimize
from tests.platform_tests.studyrun import tiny_spec, write_spec


def _giving_up_study(tmp_path: Path) -> tuple[optuna.Study, object]:
    """A study with one trial to claim, whose storage gives up (past the outage budget) once the trial trained."""
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    storage.patience.say = lambda line: None
    study = optuna.create_study(study_name="gives-up", storage=storage)
    study.enqueue_trial({})

    def away(*args: object, **kwargs: object) -> None:
        raise storage.patience.give_up(301.0, "infrastructure: connection refused (OperationalError)")

    def objective(trial: optuna.Trial) -> float:
        for name in ("set_trial_state_values", "get_trial", "_get_trials", "get_all_trials"):
            setattr(storage, name, away)  # the database is gone for good: every call gives up
        return 1.0

    return study, objective


def test_optuna_hides_a_storage_that_gave_up_behind_its_own_error(tmp_path: Path) -> None:
    study, objective = _giving_up_study(tmp_path)
    with pytest.raises(Exception) as raised:
        study.optimize(objective, n_trials=1)
    assert not isinstance(raised.value, StoreOutageError), "Optuna now raises the outage itself: simplify optimize"
    assert isinstance(infrastructure_error(raised.value), StoreOutageError)


def test_the_trial_loop_stops_with_the_outage(tmp_path: Path) -> None:
    study, objective = _giving_up_study(tmp_path)
    spec = load_spec(write_spec(tmp_path / "s.yaml", tiny_spec("gives-up")))
    session = Session(spec, None, study, None, "", "")  # stores and tracker are not reached before the error
    with pytest.raises(StoreOutageError, match="unreachable for 5 min 1 s"):
        optimize(session, objective)
