"""What the scale-out tests check in the stores after a real ``python -m platform.study`` run.

The checks the test files share: exactly-once accounting per (design point, seed), nothing left
RUNNING anywhere, MLflow nesting, and "this secret appears nowhere".
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient
from mlflow.entities import Run
from optuna.trial import FrozenTrial, TrialState

from platform.records import (
    ATTR_POINT,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_SPURIOUS,
    ROLE_STUDY,
    ROLE_TRIAL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_TRIAL,
)


def load_trials(storage: str, name: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def real(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that stand for a design point (not the 'spurious' no-op trials a worker may open at the end)."""
    return [t for t in trials if not t.user_attrs.get(ATTR_SPURIOUS)]


def pairs(trials: list[FrozenTrial], state: TrialState) -> Counter:
    return Counter((t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in real(trials) if t.state == state)


def assert_complete_exactly_once(trials: list[FrozenTrial], expected: set[tuple[str, int]]) -> None:
    done = pairs(trials, TrialState.COMPLETE)
    assert set(done) == expected, f"COMPLETE pairs {sorted(done)} != expected {sorted(expected)}"
    assert set(done.values()) == {1}, f"some pair completed more than once: {done}"


def assert_nothing_left_running(trials: list[FrozenTrial], runs: list[Run]) -> None:
    stuck = [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert not stuck, f"trials left RUNNING/WAITING: {stuck}"
    running = [(r.info.run_name, r.data.tags.get(TAG_ROLE)) for r in runs if r.info.status == "RUNNING"]
    assert not running, f"MLflow runs left RUNNING: {running}"


def mlflow_runs(client: MlflowClient, name: str) -> list[Run]:
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, f"no MLflow experiment named {name}"
    return client.search_runs([experiment.experiment_id], max_results=1000)


def split_runs(runs: list[Run]) -> tuple[Run, list[Run]]:
    """(the one parent run, the child runs); fails unless there is exactly one parent."""
    parents = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_STUDY]
    assert len(parents) == 1, f"expected one parent run, got {[r.info.run_id for r in parents]}"
    children = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_TRIAL]
    assert len(children) + 1 == len(runs), "runs that are neither the study's parent nor trials"
    return parents[0], children


def assert_trials_match_runs(trials: list[FrozenTrial], parent: Run, children: list[Run]) -> None:
    """Each trial's child run exists, nests under the parent and mirrors its state.

    A child run no trial points to can only come from a process killed between creating the run and recording
    its id on the trial: it must be closed FAILED and belong (``sasa.trial_number``) to a failed trial.
    """
    mirror = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
    by_id = {r.info.run_id: r for r in children}
    by_number = {t.number: t for t in trials}
    with_runs = [t for t in real(trials) if ATTR_RUN in t.user_attrs]
    missing = [t.number for t in with_runs if t.user_attrs[ATTR_RUN] not in by_id]
    assert not missing, f"trials {missing} point to MLflow runs that are not children of the study"
    for trial in with_runs:
        run = by_id[trial.user_attrs[ATTR_RUN]]
        assert run.data.tags[TAG_PARENT] == parent.info.run_id
        assert run.data.tags[TAG_TRIAL] == str(trial.number)
        assert run.info.status == mirror[trial.state], (trial.number, trial.state, run.info.status)
    referenced = {t.user_attrs[ATTR_RUN] for t in with_runs}
    for run in children:
        if run.info.run_id in referenced:
            continue
        owner = by_number.get(int(run.data.tags[TAG_TRIAL]))
        assert run.info.status == "FAILED" and owner is not None and owner.state == TrialState.FAIL, (
            f"unreferenced child run {run.info.run_name} ({run.info.status}) of trial "
            f"{run.data.tags[TAG_TRIAL]} ({owner.state if owner else 'missing'}): was the trial claimed "
            "by two workers?"
        )


def assert_secret_absent(secret: str, client: MlflowClient, runs: list[Run], *texts: str) -> None:
    """``secret`` is in no run's params or tags, in no parent ``spec.yaml``, and in none of ``texts``."""
    for run in runs:
        for kind, mapping in (("param", run.data.params), ("tag", run.data.tags)):
            leaked = [k for k, v in mapping.items() if secret in v or secret in k]
            assert not leaked, f"password in {kind}s {leaked} of run {run.info.run_name}"
        if run.data.tags.get(TAG_ROLE) == ROLE_STUDY:
            with tempfile.TemporaryDirectory() as tmp:
                spec_yaml = Path(client.download_artifacts(run.info.run_id, "spec.yaml", tmp)).read_text()
            assert secret not in spec_yaml, "password in the parent run's spec.yaml artifact"
    for i, text in enumerate(texts):
        assert secret not in text, f"password printed (output #{i}): ...{text[max(0, text.find(secret) - 80):][:200]}"
