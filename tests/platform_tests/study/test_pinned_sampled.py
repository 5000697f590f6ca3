"""Pins a sampled design through the CLI: TPE + Hyperband, ``n_trials: 2`` × seeds [0, 1], one sampled trial killed.

The scenario (:func:`killed_sampled_study`, run once per test session and shared with test_pinned_resume.py):

1. ``python -m platform.study`` starts; the first *sampled* trial (TPE picks a learning rate, seed 0; the seed-1
   copy is enqueued) is killed with SIGKILL once it has checkpointed an epoch;
2. a duplicate of the still-WAITING seed-1 copy is enqueued by hand into the Optuna storage (what two machines
   recovering one pair would leave behind: one (design point, seed) enqueued twice);
3. the same command runs again and finishes the study.

Everything is read back from the stores (Optuna storage, MLflow), never from the product's own summary of itself.
"""

from __future__ import annotations

import functools
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from platform.records import ATTR_FAIL, ATTR_ORIGIN, ATTR_POINT, ATTR_RUN, ATTR_SEED, ATTR_SPURIOUS, ORIGIN_SAMPLED
from tests.platform_tests.studyrun import run_study, start_study, stores, tiny_spec, wait_for_trials, write_spec

NAME = "sampled"
EPOCHS = 4
N_TRIALS = 2
SEEDS = [0, 1]
LR_RANGE = (0.01, 0.1)  # a continuous range: TPE never samples one design point twice
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Scenario:
    tmp_path: Path
    storage: str
    tracking: str
    killed: int  # number of the killed sampled trial
    duplicate: int  # number of the hand-enqueued duplicate
    waiting_at_kill: list[int]  # WAITING trials when the first run died
    rerun: subprocess.CompletedProcess

    def trials(self) -> list[FrozenTrial]:
        return optuna.load_study(study_name=NAME, storage=self.storage).get_trials()

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking)

    def runs(self) -> list:
        client = self.client()
        return client.search_runs([client.get_experiment_by_name(NAME).experiment_id])


def spec_dict() -> dict:
    return tiny_spec(
        NAME,
        model={"backbone": "conv"},  # the design, not the layer, is under test: the fastest backbone
        train={"epochs": EPOCHS, "limit_train_batches": 3, "limit_val_batches": 2, "warmup_epochs": 0},
        search={"design": "tpe", "parameters": {"lr": {"type": "log_float", "low": LR_RANGE[0],
                                                       "high": LR_RANGE[1]}},
                "seeds": SEEDS, "n_trials": N_TRIALS},
        pruner={"type": "hyperband", "warmup_epochs": 1},
    )


def _checkpointed_sampled_trial(tmp_path: Path) -> Callable[[list[FrozenTrial]], FrozenTrial | None]:
    """The RUNNING sampled trial once it has saved ``last.ckpt`` (an epoch finished, ≥ 3 epochs to go)."""

    def found(trials: list[FrozenTrial]) -> FrozenTrial | None:
        running = [t for t in trials
                   if t.state == TrialState.RUNNING and t.user_attrs.get(ATTR_ORIGIN) == ORIGIN_SAMPLED]
        checkpointed = list((tmp_path / "runs" / "trials" / NAME).glob("*-seed0/last.ckpt"))
        return running[0] if running and checkpointed else None

    return found


@functools.cache
def killed_sampled_study(root: Path) -> Scenario:
    """Run the scenario once (cached per session: both test modules pass the session's base temp folder)."""
    tmp_path = root / "killed_sampled"
    tmp_path.mkdir()
    spec = write_spec(tmp_path / f"{NAME}.yaml", spec_dict())
    storage, tracking = stores(tmp_path)
    proc = start_study(spec, tmp_path, log=tmp_path / "first.log")
    try:
        victim = wait_for_trials(tmp_path, NAME, proc, _checkpointed_sampled_trial(tmp_path),
                                 what="a checkpointed sampled trial")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)

    study = optuna.load_study(study_name=NAME, storage=storage)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    copy = next(t for t in waiting if t.user_attrs.get(ATTR_POINT) == victim.user_attrs[ATTR_POINT])
    study.enqueue_trial(dict(copy.params), user_attrs={ATTR_POINT: copy.user_attrs[ATTR_POINT],
                                                       ATTR_SEED: copy.user_attrs[ATTR_SEED]})
    duplicate = study.get_trials(states=(TrialState.WAITING,))[-1].number

    rerun = run_study(spec, tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    return Scenario(tmp_path, storage, tracking, victim.number, duplicate, [t.number for t in waiting], rerun)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return killed_sampled_study(tmp_path_factory.getbasetemp())


def _pair(trial: FrozenTrial) -> tuple[str, int]:
    return trial.user_attrs[ATTR_POINT], trial.user_attrs[ATTR_SEED]


def _real(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that stand for a (design point, seed): all but the duplicate that stepped aside."""
    return [t for t in trials if not t.user_attrs.get(ATTR_SPURIOUS)]


def test_exactly_one_finished_trial_per_design_point_and_seed(scenario: Scenario) -> None:
    trials = scenario.trials()
    finished = [t for t in _real(trials) if t.state in DONE]
    pairs = Counter(_pair(t) for t in finished)
    points = sorted({point for point, _ in pairs})
    assert len(points) == N_TRIALS
    assert sorted(pairs) == sorted((p, s) for p in points for s in SEEDS)
    assert set(pairs.values()) == {1}
    # Nothing else is left: besides those, only the killed attempt (FAIL) and the duplicate (stepped aside).
    finished_numbers = {t.number for t in finished}
    others = sorted(t.number for t in trials if t.number not in finished_numbers)
    assert others == sorted([scenario.killed, scenario.duplicate])
    assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    for trial in finished:  # the seeds of one design point share its sampled parameters exactly
        assert trial.params == next(t.params for t in finished if t.user_attrs[ATTR_POINT] ==
                                    trial.user_attrs[ATTR_POINT])
        assert LR_RANGE[0] <= trial.params["lr"] <= LR_RANGE[1]
        assert trial.user_attrs[ATTR_POINT] == f"lr={trial.params['lr']:.6g}"


def test_n_trials_counts_sampled_design_points_not_seeds_or_retries(scenario: Scenario) -> None:
    trials = scenario.trials()
    sampled = [t for t in trials if t.user_attrs.get(ATTR_ORIGIN) == ORIGIN_SAMPLED]
    assert len(sampled) == N_TRIALS  # the killed one included; its retry and the seed copies are enqueued
    assert scenario.killed in [t.number for t in sampled]
    assert len({t.params["lr"] for t in sampled}) == N_TRIALS
    assert all(t.user_attrs[ATTR_SEED] == SEEDS[0] for t in sampled)
    # The trial count the spec implies: n_trials × seeds finished pairs, reported as such by the CLI.
    assert f"trials done: {N_TRIALS * len(SEEDS)}/{N_TRIALS * len(SEEDS)}" in scenario.rerun.stdout


def test_killed_sampled_trial_is_failed_and_retried_with_its_parameters(scenario: Scenario) -> None:
    by_number = {t.number: t for t in scenario.trials()}
    killed = by_number[scenario.killed]
    assert killed.state == TrialState.FAIL and ATTR_FAIL not in killed.user_attrs  # lost, not a bad trial
    assert "closed trials left RUNNING by a dead process" in scenario.rerun.stdout
    retries = [t for t in _real(by_number.values()) if _pair(t) == _pair(killed) and t.number != killed.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.number > max(scenario.waiting_at_kill) and retry.state in DONE
    assert retry.params == killed.params and ATTR_ORIGIN not in retry.user_attrs
    statuses = {r.info.run_id: r.info.status for r in scenario.runs()}
    assert statuses[killed.user_attrs[ATTR_RUN]] == "FAILED"
    assert statuses[retry.user_attrs[ATTR_RUN]] in ("FINISHED", "KILLED")  # KILLED ↔ pruned
    assert "RUNNING" not in statuses.values()
