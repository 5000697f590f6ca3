"""Sampled designs over discrete spaces (the real CLI): a sampler that proposes an already-sampled design point
does not use up one of ``n_trials``; a space with fewer distinct points than ``n_trials`` runs each point once
and the study ends complete (exit 0), also when rerun.

Regression: TPE (random start-up, seed 0) proposes window sizes 5, 7, 7 for the study below. The repeat used to
count toward ``n_trials`` and enqueue its seeds before being pushed aside, so the study could never finish
("study incomplete", exit 1, on every rerun).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import ATTR_ORIGIN, ATTR_POINT, ATTR_REPEAT, ATTR_RUN, ATTR_SEED, ATTR_SPURIOUS
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec

CONV = {"backbone": "conv"}


def _trials(tmp_path: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    storage, _ = stores(tmp_path)
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _completed_points(trials: list[optuna.trial.FrozenTrial]) -> Counter:
    return Counter((t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in trials
                   if t.state == TrialState.COMPLETE and not t.user_attrs.get(ATTR_SPURIOUS))


def test_a_repeated_sample_does_not_use_up_a_trial(tmp_path: Path) -> None:
    search = {"design": "tpe", "parameters": {"window_size": [3, 5, 7]}, "seeds": [0], "n_trials": 3,
              "confirm": False}  # the search phase is under test (the confirmation round: test_confirmation.py)
    spec = write_spec(tmp_path / "dup.yaml", tiny_spec("dup", model=CONV, search=search))
    result = run_study(spec, tmp_path, forked=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "trials done: 3/3" in result.stdout, result.stdout
    trials = _trials(tmp_path, "dup")
    assert _completed_points(trials) == Counter({(f"window_size={k}", 0): 1 for k in (3, 5, 7)})
    repeats = [t for t in trials if t.user_attrs.get(ATTR_REPEAT)]
    # The case this test is about happened (TPE seed 0 repeats a point here): stepped aside, no training.
    assert repeats, "the sampler proposed no repeated point; the regression was not exercised"
    assert all(t.state == TrialState.PRUNED and t.user_attrs.get(ATTR_SPURIOUS) for t in repeats)
    assert all(ATTR_RUN not in t.user_attrs and ATTR_ORIGIN not in t.user_attrs for t in repeats)

    again = run_study(spec, tmp_path, forked=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "is complete (3/3 trials); nothing to run" in again.stdout
    assert len(_trials(tmp_path, "dup")) == len(trials)  # the rerun trained nothing and asked nothing


def test_a_space_smaller_than_n_trials_runs_each_point_once_and_ends_complete(tmp_path: Path) -> None:
    search = {"design": "random", "parameters": {"window_size": [3, 5]}, "seeds": [0, 1], "n_trials": 4,
              "confirm": False}
    spec = write_spec(tmp_path / "small.yaml", tiny_spec("small", model=CONV, search=search))
    result = run_study(spec, tmp_path, forked=True)
    assert result.returncode == 0, result.stdout + result.stderr
    said = " ".join(result.stdout.split())  # rich wraps long lines
    assert "the search space holds only 2 distinct design points (n_trials=4)" in said, result.stdout
    assert "trials done: 4/4" in result.stdout, result.stdout  # 2 points × 2 seeds
    expected = {(f"window_size={k}", seed): 1 for k in (3, 5) for seed in (0, 1)}
    assert _completed_points(_trials(tmp_path, "small")) == Counter(expected)

    # The recorded runs carry the GPU-path switches as MLflow params (CPU values here).
    _, tracking = stores(tmp_path)
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("small")
    runs = client.search_runs([experiment.experiment_id], "tags.`sasa.seed` = '0'")
    assert runs
    for run in runs:
        params = run.data.params
        assert params["model.backend"] == "auto" and params["train.compile"] == "False"
        assert params["train.channels_last"] == "False" and params["train.precision"] == "32-true"
        assert params["runtime.cudnn_benchmark"] == "False" and "runtime.float32_matmul_precision" in params
        assert params["runtime.threads"].isdigit() and params["runtime.sasa_backend"] == "torch"  # the numerics record

    again = run_study(spec, tmp_path, forked=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "is complete (4/4 trials); nothing to run" in again.stdout
