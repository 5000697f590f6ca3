"""Optuna pruning hooked to Lightning's validation epochs.

Written here rather than taken from optuna-integration (DESIGN.md): after every validation epoch the monitored
metric is reported to the trial; when the pruner says so, training stops at once (``trainer.should_stop``) and
the objective raises :class:`optuna.TrialPruned` after ``fit`` returns, so the checkpoint and MLflow run are
closed cleanly. Under DDP every rank asks the (shared RDB) storage, so all ranks agree to stop.
"""

from __future__ import annotations

import lightning.pytorch as pl
import optuna


class OptunaPruning(pl.Callback):
    def __init__(self, trial: optuna.Trial | None, monitor: str) -> None:
        """``trial`` is None on DDP follower ranks, which only receive rank 0's decision."""
        self.trial = trial
        self.monitor = monitor
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        epoch = trainer.current_epoch
        decides = trainer.is_global_zero and self.trial is not None
        if decides:
            self.trial.report(float(value), step=epoch)
        should_prune = trainer.strategy.broadcast(self.trial.should_prune() if decides else False)
        if should_prune:
            self.pruned_at = epoch
            trainer.should_stop = True
