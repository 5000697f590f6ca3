"""Ctrl-C between Optuna's ask() and the objective (platform/study/interrupts.py): the trial ends FAIL, never
RUNNING. The signal is sent by the sampler while ``ask`` runs — the moment a real Ctrl-C hits on a fast machine."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from platform.study.interrupts import deliver_held_interrupt, hold_interrupts_around_ask


class _CtrlCWhileAsking(optuna.samplers.RandomSampler):
    """Sends SIGINT to this process from inside ``ask`` (after the trial is RUNNING in the store)."""

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        os.kill(os.getpid(), signal.SIGINT)


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", sampler=_CtrlCWhileAsking(seed=0))


def _objective(trial: optuna.Trial) -> float:
    deliver_held_interrupt()
    return 1.0


def test_a_ctrl_c_during_ask_leaves_the_trial_running_without_the_hold(tmp_path: Path) -> None:
    """The failure this module exists for, shown on Optuna as is (if Optuna ever fixes it, this test says so)."""
    study = _study(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(_objective, n_trials=1)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]


def test_a_ctrl_c_during_ask_is_delivered_in_the_objective_and_the_trial_fails(tmp_path: Path) -> None:
    study = _study(tmp_path)
    hold_interrupts_around_ask(study)
    hold_interrupts_around_ask(study)  # idempotent: one wrapper
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(_objective, n_trials=3)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]
    assert signal.getsignal(signal.SIGINT) is handler, "the SIGINT handler was not restored"


def test_without_a_ctrl_c_the_hold_changes_nothing(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    hold_interrupts_around_ask(study)
    handler = signal.getsignal(signal.SIGINT)
    study.optimize(lambda t: (deliver_held_interrupt(), t.suggest_float("x", 0, 1))[1], n_trials=2)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    assert signal.getsignal(signal.SIGINT) is handler
    deliver_held_interrupt()  # nothing held: a no-op
