"""Pruning with a real Lightning Trainer and a real Optuna study: steps are epochs trained, the final epoch is
never pruned (Hyperband could otherwise prune a trial whose whole budget was spent), and a design point is
pruned as a whole."""

from __future__ import annotations

import lightning.pytorch as pl
import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from platform.records import METRIC_VAL_LOSS
from platform.search import make_pruner
from platform.spec import parse_spec
from platform.training import OptunaPruning


class AlwaysPrune(optuna.pruners.BasePruner):
    """A pruner that prunes at every step it is asked about (a real Optuna pruner, the strictest one)."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log(METRIC_VAL_LOSS, nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(callback: OptunaPruning, epochs: int) -> pl.Trainer:
    data = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[callback], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(Tiny(), data, data)
    return trainer


def test_steps_are_epochs_trained_and_the_final_epoch_is_never_pruned() -> None:
    study = optuna.create_study(pruner=AlwaysPrune())
    trial = study.ask()
    callback = OptunaPruning(trial, METRIC_VAL_LOSS)
    trainer = _fit(callback, epochs=1)
    assert callback.pruned_at is None and trainer.current_epoch == 1  # one epoch = the whole budget
    assert list(study.trials[0].intermediate_values) == [1]

    trial = study.ask()
    callback = OptunaPruning(trial, METRIC_VAL_LOSS)
    _fit(callback, epochs=3)
    assert callback.pruned_at == 1 and not callback.by_point
    assert list(study.trials[1].intermediate_values) == [1]


def test_hyperband_never_prunes_after_the_budget_is_spent() -> None:
    # min_resource 1, max_resource 3 (epochs trained): rungs after 1 and 3 epochs; 3 is the final epoch.
    spec = parse_spec({"name": "s", "pruner": {"type": "hyperband", "warmup_epochs": 1}, "train": {"epochs": 3}})
    # Hyperband assigns trials to brackets by crc32(study name, trial number): a fixed name makes that assignment
    # (and so the test) deterministic; an unnamed study gets a random name.
    study = optuna.create_study(study_name="hyperband-budget", pruner=make_pruner(spec), direction="minimize")
    for value in (0.0, 0.1, 0.2):  # good trials first, so a bad one is below every rung
        trial = study.ask()
        for trained in (1, 2, 3):
            trial.report(value, trained)
        study.tell(trial, value)
    losers = []
    for _ in range(6):
        callback = OptunaPruning(study.ask(), METRIC_VAL_LOSS)
        _fit(callback, epochs=3)  # a random linear model: far worse than 0.2 at every step
        losers.append(callback.pruned_at)
    assert 3 not in losers  # epoch 3 of 3 is the final epoch: reported, never pruned
    assert 1 in losers  # while the rung after 1 epoch does prune (the pruner is live)


def test_a_running_seed_stops_when_another_seed_of_its_point_was_pruned() -> None:
    study = optuna.create_study()  # NopPruner-like default: the pruner itself never prunes here
    study.pruner = optuna.pruners.NopPruner()
    callback = OptunaPruning(study.ask(), METRIC_VAL_LOSS, point_pruned=lambda: True)
    _fit(callback, epochs=3)
    assert (callback.pruned_at, callback.by_point) == (1, True)
