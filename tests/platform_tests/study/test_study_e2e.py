"""A tiny real study end to end (2 design points × 2 seeds), checked in the Optuna storage and in MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import (
    ATTR_BEST_VALUE,
    ATTR_EPOCHS_RUN,
    ATTR_FLOPS,
    ATTR_MODEL_URI,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_POINT_PRUNED,
    ATTR_PRUNED_AT,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_TEST,
    ATTR_THROUGHPUT,
    METRIC_FLOPS,
    METRIC_PARAMS,
    METRIC_TEST_ACC,
    METRIC_TRAIN_LOSS,
    METRIC_VAL_ACC,
    METRIC_VAL_LOSS,
    ROLE_STUDY,
    ROLE_TRIAL,
    TAG_COMMIT,
    TAG_PARENT,
    TAG_POINT,
    TAG_ROLE,
    TAG_SEED,
    TAG_STUDY,
    TAG_TRIAL,
)
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec
from tests.support.limits import HANG_S


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp_path = tmp_path_factory.mktemp("e2e")
    spec = write_spec(tmp_path / "tiny.yaml", tiny_spec("tiny"))
    result = run_study(spec, tmp_path, forked=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path, result


def test_optuna_has_every_design_point_once_per_seed(finished_study) -> None:
    tmp_path, _ = finished_study
    storage, _ = stores(tmp_path)
    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    pairs = sorted((t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in trials)
    assert pairs == [("window_size=3", 0), ("window_size=3", 1), ("window_size=5", 0), ("window_size=5", 1)]
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs[ATTR_PARAMS] > 0 and attrs[ATTR_FLOPS] > 0 and attrs[ATTR_THROUGHPUT] > 0
        assert 0.0 <= trial.value <= 1.0 and trial.value == attrs[ATTR_BEST_VALUE]
        assert METRIC_TEST_ACC in attrs[ATTR_TEST]
        assert attrs[ATTR_MODEL_URI].startswith("models:/")
    # FLOPs grow with the window; params barely do (only the k×C relative embeddings; paper, section 3).
    by_point = {t.user_attrs[ATTR_POINT]: t.user_attrs for t in trials}
    assert by_point["window_size=5"]["flops"] > by_point["window_size=3"]["flops"]
    small, large = by_point["window_size=3"]["params"], by_point["window_size=5"]["params"]
    assert 0 < large - small < 0.01 * small


def test_mlflow_parent_and_nested_children(finished_study) -> None:
    tmp_path, _ = finished_study
    _, tracking = stores(tmp_path)
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_STUDY]
    children = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_TRIAL]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "spec.yaml" in artifacts
    # The ablation report is built when the study ends and logged to the parent run.
    assert "report" in artifacts
    assert "report/report.html" in [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    assert (tmp_path / "runs" / "reports" / "tiny" / "report.html").exists()
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags[TAG_PARENT] == parent.info.run_id
        for tag in (TAG_STUDY, TAG_POINT, TAG_SEED, TAG_TRIAL, TAG_COMMIT):
            assert child.data.tags[tag]
        assert child.data.params["model.kernel_size"] in {"3", "5"}
        assert child.data.params["train.lr"] == "0.05"
        history = client.get_metric_history(child.info.run_id, METRIC_VAL_ACC)
        assert [m.step for m in history] == [0]
        logged = {METRIC_TRAIN_LOSS, METRIC_VAL_LOSS, METRIC_TEST_ACC, METRIC_PARAMS, METRIC_FLOPS}
        assert logged <= set(child.data.metrics)


def test_logged_model_loads_outside_repo(finished_study, tmp_path: Path) -> None:
    tmp, _ = finished_study
    storage, tracking = stores(tmp)
    trial = optuna.load_study(study_name="tiny", storage=storage).best_trial
    uri = trial.user_attrs[ATTR_MODEL_URI]
    code = (
        "import sys, mlflow, mlflow.pytorch, torch\n"
        f"mlflow.set_tracking_uri({tracking!r})\n"
        f"model = mlflow.pytorch.load_model({uri!r})\n"
        "print(tuple(model(torch.zeros(3, 1, 8, 8)).shape))\n"
    )
    # cwd outside the repo: only the installed/packaged `sasa` can make the model loadable there.
    assert not (tmp_path / "sasa").exists()
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("(3, 10)")


def test_terminal_summary_and_rerun_is_a_no_op(finished_study) -> None:
    tmp_path, result = finished_study
    assert "window_size=3" in result.stdout and "window_size=5" in result.stdout
    assert "mlflow ui --backend-store-uri" in result.stdout
    again = run_study(tmp_path / "tiny.yaml", tmp_path, forked=True)
    assert again.returncode == 0, again.stderr
    assert "nothing to run" in again.stdout
    storage, _ = stores(tmp_path)
    assert len(optuna.load_study(study_name="tiny", storage=storage).get_trials()) == 4


def test_pruning_stops_a_bad_trial_early(tmp_path: Path) -> None:
    """A learning rate of 1e-7 cannot beat a trained peer after one epoch: the median pruner stops it there, and
    its design point is pruned as a whole (its other seed is not trained)."""
    spec = write_spec(tmp_path / "prune.yaml", tiny_spec(
        "prune",
        model={"backbone": "conv"},
        train={"epochs": 3, "limit_train_batches": None, "limit_val_batches": None, "lr": 0.05},
        search={"design": "grid", "parameters": {"train.lr": [0.05, 1.0e-7]}, "seeds": [0, 1]},
        pruner={"type": "median", "warmup_epochs": 0, "startup_trials": 2},
    ))
    result = run_study(spec, tmp_path, forked=True)
    assert result.returncode == 0, result.stdout + result.stderr
    storage, tracking = stores(tmp_path)
    good0, good1, bad, skipped = optuna.load_study(study_name="prune", storage=storage).get_trials()
    assert good0.state == good1.state == TrialState.COMPLETE and good0.user_attrs[ATTR_EPOCHS_RUN] == 3
    assert bad.state == TrialState.PRUNED
    assert bad.user_attrs[ATTR_PRUNED_AT] == 1  # epochs trained (the unit of the pruners' resources)
    assert sorted(bad.intermediate_values) == [1]  # never trained past the first epoch
    assert skipped.state == TrialState.PRUNED and skipped.user_attrs[ATTR_SEED] == 1
    assert skipped.user_attrs[ATTR_POINT_PRUNED] is True and ATTR_RUN not in skipped.user_attrs
    client = MlflowClient(tracking_uri=tracking)
    run = client.get_run(bad.user_attrs[ATTR_RUN])
    assert run.info.status == "KILLED"
    assert len(client.get_metric_history(run.info.run_id, METRIC_VAL_ACC)) == 1
    report = (tmp_path / "runs" / "reports" / "prune" / "table.md").read_text()
    bad_row = next(line for line in report.splitlines() if line.startswith("| train.lr=1e-07 |"))
    assert "| pruned at epoch 1 |" in bad_row
