"""A DDP follower rank (``LOCAL_RANK`` ≥ 1 with ``SASA_DDP_TRIAL`` set): rebuild rank 0's trial from the payload
(:class:`.ddp.DdpTrial`) and train it; Optuna and MLflow are never touched here (see :mod:`.ddp`)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.datamodule import build_datamodule
from ..search import build_model, point_from_optuna, resolve
from ..spec.study_spec import parse_spec
from ..training.pruning import OptunaPruning
from ..training.trainer import train_trial
from .ddp import TRIAL_ENV, DdpTrial


def run_ddp_follower() -> int:
    """Entry point of ranks ≥ 1: train the trial described in ``SASA_DDP_TRIAL``, report nothing."""
    trial = DdpTrial.from_env()
    spec = parse_spec(trial.spec, source=TRIAL_ENV)
    torch.set_num_threads(trial.threads)
    point = point_from_optuna(spec, trial.optuna_params)
    _, train = resolve(spec, point)
    info = trial.data_info
    torch.manual_seed(trial.seed)  # as on rank 0 (DDP also broadcasts rank 0's weights)
    net = build_model(spec, point, num_classes=info["num_classes"], in_channels=info["channels"])
    datamodule = build_datamodule(spec.data, batch_size=train.batch_size, seed=trial.seed,
                                  cache_dir=Path(trial.data_cache), num_workers=spec.execution.data_workers)
    callbacks = [OptunaPruning(None, spec.objective.metric)] if trial.pruning else []
    train_trial(
        net, datamodule, train=train, monitor=spec.objective.metric,
        mode="max" if spec.objective.direction == "maximize" else "min", seed=trial.seed,
        work_dir=Path(trial.work_dir), callbacks=callbacks, accelerator=trial.accelerator,
        devices=trial.devices, strategy="ddp", progress_bar=False,
    )
    return 0
