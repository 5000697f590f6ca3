"""The objective (``study.objective``) in-process, on real MLflow (a SQLite tracking store) and the digits data: a
trial that resumed from a checkpoint logs its model with the best epoch's validation metric, even when that epoch
came before the resume (its run never saw it). The trained result comes from ``finished.pt`` (no training)."""

from __future__ import annotations

from pathlib import Path

import optuna
import torch
from mlflow.entities import Metric
from optuna.trial import TrialState

import sasa
from platform.data.datamodule import build_datamodule, prepare_data_once
from platform.records import ATTR_MODEL_URI, ATTR_POINT, ATTR_SEED
from platform.spec.study_spec import load_spec
from platform.study.durable import Finished, save_finished
from platform.study.lifecycle import enqueue_missing
from platform.study.objective import Objective, TrialContext, _safe
from platform.study.tracking import Tracker
from platform.training.trainer import TrainOutcome
from tests.platform_tests.studyrun import tiny_spec, write_spec


def _resumed_result(resumed_at: int) -> Finished:
    """A trial resumed from its epoch-0 checkpoint: its best epoch (0, val/acc 0.9) came before the resume."""
    net = sasa.create_model("resnet26", num_classes=10, in_channels=1, small_input=True, width=0.25, heads=2)
    outcome = TrainOutcome(best_value=0.9, best_epoch=0, epochs_run=2, test_metrics={"test/acc": 0.8},
                           throughput=10.0, fit_seconds=3.0, test_seconds=0.5, world_size=1,
                           resumed_from="last.ckpt", data_wait_fraction=0.1)
    after_resume = Metric("val/acc", 0.7, 0, resumed_at)  # what the resumed run logged: epoch 1 only
    return Finished(outcome, net, torch.rand(2, 1, 8, 8), [0.5], [0.25], [{"metrics": [after_resume], "tags": []}])


def test_a_resumed_trials_model_carries_its_best_epochs_val_metric(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path / "s.yaml", tiny_spec("resumed")))
    cache, work_root = tmp_path / "cache", tmp_path / "runs"
    prepare_data_once(spec.data, cache)

    def datamodule_factory(batch_size: int, seed: int):
        dm = build_datamodule(spec.data, batch_size=batch_size, seed=seed, cache_dir=cache)
        dm.setup("fit")
        return dm

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")
    experiment = tracker.experiment_id(spec.name)
    parent = tracker.open_parent_run(experiment, spec.name, None, tags={})
    study = optuna.create_study(study_name=spec.name, direction="maximize")
    enqueue_missing(study, spec)
    for waiting in study.get_trials(states=(TrialState.WAITING,)):
        attrs = waiting.user_attrs
        save_finished(work_root / f"{_safe(attrs[ATTR_POINT])}-seed{attrs[ATTR_SEED]}", _resumed_result(1))
    context = TrialContext(spec=spec, tracker=tracker, experiment_id=experiment, parent_run_id=parent,
                           datamodule_factory=datamodule_factory, data_info=datamodule_factory(32, 0).dataset_info(),
                           data_cache=cache, work_root=work_root, accelerator="cpu", progress_bar=False)
    study.optimize(Objective(context), n_trials=1)

    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE and trial.value == 0.9
    model = tracker.client.get_logged_model(trial.user_attrs[ATTR_MODEL_URI].removeprefix("models:/"))
    by_key = {m.key: (m.value, m.step) for m in model.metrics}
    assert by_key.get("val/acc") == (0.9, 0), by_key
