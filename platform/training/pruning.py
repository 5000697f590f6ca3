"""Optuna pruning hooked to Lightning's validation epochs.

Written here rather than taken from optuna-integration (DESIGN.md): after every validation epoch the monitored
metric is reported to the trial; when the pruner says so, training stops at once (``trainer.should_stop``) and
the objective raises :class:`optuna.TrialPruned` after ``fit`` returns, so the checkpoint and MLflow run are
closed cleanly. Under DDP every rank asks the (shared RDB) storage, so all ranks agree to stop.

Steps are *epochs trained* (1 after the first epoch), the unit of ``make_pruner``'s ``min_resource`` /
``max_resource``; the final epoch is reported but never pruned (the budget is already spent). Seeds of one
design point are pruned together: ``point_pruned`` (asked after every epoch) says whether another seed of the
point was pruned, and this trial then stops too.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import optuna


class OptunaPruning(pl.Callback):
    def __init__(self, trial: optuna.Trial | None, monitor: str,
                 point_pruned: Callable[[], bool] | None = None) -> None:
        """``trial`` is None on DDP follower ranks, which only receive rank 0's decision."""
        self.trial = trial
        self.monitor = monitor
        self.point_pruned = point_pruned
        self.pruned_at: int | None = None  # epochs trained when stopped
        self.by_point = False  # stopped because another seed of the design point was pruned

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        trained = trainer.current_epoch + 1
        final = trainer.max_epochs is not None and trained >= trainer.max_epochs
        decides = trainer.is_global_zero and self.trial is not None
        verdict = 0
        if decides:
            self.trial.report(float(value), step=trained)
            if not final and self.trial.should_prune():
                verdict = 1
            elif not final and self.point_pruned is not None and self.point_pruned():
                verdict = 2
        verdict = trainer.strategy.broadcast(verdict)
        if verdict:
            self.pruned_at, self.by_point = trained, verdict == 2
            trainer.should_stop = True
