"""The study's MLflow layer (platform/study/tracking.py) under concurrent workers: two processes that log the
same dataset input at the same moment (as two workers starting their first trials do) both succeed, on a real
SQLite tracking store — MLflow creates the dataset row on first use without a lock, and the loser of that race
used to fail its trial (``UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest``;
reproduced 8 of 8 times with this set-up before the fix)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from platform.spec.sections import DataSpec
from platform.study.tracking import Tracker
from tests.support.limits import HANG_S

INFO = {"name": "digits", "channels": 1, "image_size": 8, "num_classes": 10}


def _log_dataset(uri: str, run_id: str, barrier: Any, results: Any) -> None:
    tracker = Tracker(uri)
    barrier.wait()  # both processes write at the same moment
    try:
        tracker.log_dataset(run_id, DataSpec(source="digits", image_size=8), INFO)
        results.put((run_id, "ok"))
    except Exception as exc:  # reported to the test, which shows it
        results.put((run_id, f"{type(exc).__name__}: {exc}"[:300]))


def test_two_workers_logging_the_same_dataset_at_once_both_succeed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    context = mp.get_context("spawn")
    for round_number in range(3):
        experiment = client.create_experiment(f"race-{round_number}")
        runs = [client.create_run(experiment).info.run_id for _ in range(2)]
        barrier, results = context.Barrier(2), context.Queue()
        workers = [context.Process(target=_log_dataset, args=(uri, run, barrier, results)) for run in runs]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=HANG_S)
        outcomes = dict(results.get(timeout=10) for _ in workers)
        assert outcomes == dict.fromkeys(runs, "ok"), outcomes
        for run in runs:
            inputs = client.get_run(run).inputs.dataset_inputs
            assert len(inputs) == 1 and inputs[0].dataset.name == "digits", inputs


def test_a_logged_model_carries_its_checkpoints_metrics(tmp_path: Path) -> None:
    """MLflow 3 links to a logged model the run's metrics at the step it is logged at: the backbone logged at its
    best epoch carries that epoch's val metrics and the test metrics logged there, not epoch 0's (issue 25:
    every logged model showed its epoch-0 val/acc)."""
    import torch

    import sasa
    from platform.records import METRIC_TEST_ACC

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, artifact_root=tmp_path / "artifacts")
    experiment = tracker.experiment_id("models")
    run_id = tracker.start_child_run(experiment, "parent", name="trial", tags={})
    for epoch, acc in enumerate((0.43, 0.97, 0.91)):  # the best epoch is 1
        tracker.log_metrics(run_id, {"val/acc": acc, "val/loss": 2.0 - acc}, step=epoch)
    tracker.log_metrics(run_id, {METRIC_TEST_ACC: 0.95}, step=1)
    net = sasa.create_model("resnet26", num_classes=10, small_input=True, width=0.25, heads=2, in_channels=1)
    uri_of_model = tracker.log_backbone(run_id, net, torch.rand(2, 1, 8, 8), mean=[0.5], std=[0.25], step=1)
    model = tracker.client.get_logged_model(uri_of_model.removeprefix("models:/"))
    by_key = {m.key: (m.value, m.step) for m in model.metrics}
    assert by_key["val/acc"] == (0.97, 1) and by_key[METRIC_TEST_ACC] == (0.95, 1)
    assert by_key["val/loss"] == pytest.approx((1.03, 1))
    assert all(m.step == 1 for m in model.metrics)  # nothing of another epoch


def test_a_retried_model_log_leaves_one_model_not_an_orphan(tmp_path: Path) -> None:
    """Reviewer's point (issue 23): logging the model is retried through an outage; a try that failed after MLflow
    had made the logged model (here: the model is logged, then the answer is lost — a real refused connection)
    must not leave a second, orphaned model of the run. The retry deletes what the failed try left."""
    import socket

    import torch

    import sasa
    from platform.study.resilient import make_patient
    from tests.support.network import free_port

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")
    experiment = tracker.experiment_id("retried")
    run_id = tracker.start_child_run(experiment, "parent", name="trial", tags={})
    logged = tracker.log_backbone
    tries: list[str] = []

    def answer_lost_once(*args: object, **kwargs: object) -> str:
        uri = logged(*args, **kwargs)
        tries.append(uri)
        if len(tries) == 1:
            socket.create_connection(("127.0.0.1", free_port()), timeout=5)  # refused: the answer never came
        return uri

    tracker.log_backbone = answer_lost_once  # type: ignore[method-assign]
    make_patient(tracker, outage_budget_s=120)
    net = sasa.create_model("resnet26", num_classes=10, small_input=True, width=0.25, heads=2, in_channels=1)
    uri = tracker.log_backbone(run_id, net, torch.rand(2, 1, 8, 8), mean=[0.5], std=[0.25], step=0)
    assert len(tries) == 2 and uri == tries[1], tries
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    models = client.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}'")
    assert [m.model_id for m in models] == [uri.removeprefix("models:/")], [m.model_id for m in models]
