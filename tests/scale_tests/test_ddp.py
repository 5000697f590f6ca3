"""``execution.devices_per_trial: K``: one trial trained with Lightning DDP over K processes (gloo on CPU).

Lightning starts the extra rank by re-running the command line, which must not start a second study: the study
has exactly one Optuna trial and one MLflow child run, rank 0 alone reports (one metric point per epoch), and
the trial knows it trained on two processes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import (
    ATTR_EPOCHS_RUN,
    ATTR_MODEL_URI,
    ATTR_POINT,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_WORLD_SIZE,
    METRIC_TRAIN_LOSS,
    METRIC_VAL_ACC,
)
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec
from tests.scale_tests.accounting import (
    assert_nothing_left_running,
    assert_trials_match_runs,
    load_trials,
    mlflow_runs,
    split_runs,
)

NAME = "ddp_trial"
EPOCHS = 2


@pytest.fixture(scope="module")
def ddp_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp(NAME)
    spec = tiny_spec(
        NAME,
        train={"epochs": EPOCHS, "limit_train_batches": 4},
        search={"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0]},
        execution={"accelerator": "cpu", "devices_per_trial": 2},
    )
    return tmp, run_study(write_spec(tmp / f"{NAME}.yaml", spec), tmp)


def test_one_trial_one_run_trained_on_two_processes(ddp_study: tuple[Path, subprocess.CompletedProcess]) -> None:
    tmp, result = ddp_study
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    storage, tracking = stores(tmp)
    trials = load_trials(storage, NAME)
    assert [(t.state, t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in trials] == [
        (TrialState.COMPLETE, "window_size=3", 0)
    ]
    assert trials[0].user_attrs[ATTR_WORLD_SIZE] == 2
    assert trials[0].user_attrs[ATTR_EPOCHS_RUN] == EPOCHS
    client = MlflowClient(tracking_uri=tracking)
    runs = mlflow_runs(client, NAME)
    parent, children = split_runs(runs)
    assert len(children) == 1
    assert_trials_match_runs(trials, parent, children)
    assert_nothing_left_running(trials, runs)


def test_only_rank_zero_reports(ddp_study: tuple[Path, subprocess.CompletedProcess]) -> None:
    tmp, _ = ddp_study
    storage, tracking = stores(tmp)
    run_id = load_trials(storage, NAME)[0].user_attrs[ATTR_RUN]
    client = MlflowClient(tracking_uri=tracking)
    for metric in (METRIC_VAL_ACC, METRIC_TRAIN_LOSS):
        steps = sorted(m.step for m in client.get_metric_history(run_id, metric))
        assert steps == list(range(EPOCHS)), (metric, steps)  # one point per epoch: rank 1 logged nothing
    experiment = client.get_experiment_by_name(NAME).experiment_id
    models = client.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}'")
    assert len(models) == 1  # the model is logged once, by rank 0
    assert load_trials(storage, NAME)[0].user_attrs[ATTR_MODEL_URI] == f"models:/{models[0].model_id}"
