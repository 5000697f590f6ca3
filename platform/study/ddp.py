"""DDP trials (``execution.devices_per_trial: K``): one Optuna trial and one MLflow run, trained on K processes.

Lightning's DDP launcher starts ranks 1..K-1 by re-running the *command line* (``python -m platform.study ...``)
with ``LOCAL_RANK`` set. Left alone, each rank would start a study of its own. So before ``fit`` rank 0 puts the
trial it is running into ``SASA_DDP_TRIAL`` (a :class:`DdpTrial`); a process that starts with that variable and a
non-zero ``LOCAL_RANK`` is a *follower*: it rebuilds the same model, data and Trainer from the payload alone (the
resolved spec travels with it, so the command line is not parsed again), joins the process group, trains, and
exits without touching Optuna or MLflow (:mod:`.follower`). Rank 0 alone reports; pruning decisions are taken on
rank 0 and broadcast (see :mod:`..training.pruning`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch

TRIAL_ENV = "SASA_DDP_TRIAL"


@dataclass(frozen=True)
class DdpTrial:
    """Everything a follower rank needs to train the same trial as rank 0 (JSON in ``SASA_DDP_TRIAL``)."""

    spec: dict[str, Any]  # the resolved spec (``StudySpec.resolved_dict()``)
    optuna_params: dict[str, Any]  # the design point as Optuna stores it
    seed: int
    work_dir: str
    data_cache: str
    data_info: dict[str, Any]  # ``ImageDataModule.dataset_info()``: num_classes, channels, image_size, ...
    pruning: bool
    threads: int
    accelerator: str
    devices: int

    def to_env(self) -> dict[str, str]:
        return {TRIAL_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DdpTrial:
        text = (os.environ if environ is None else environ).get(TRIAL_ENV)
        if not text:
            raise ValueError(f"{TRIAL_ENV} is not set: only DDP follower ranks read it")
        return cls(**json.loads(text))


def ddp_follower_requested() -> bool:
    return bool(os.environ.get(TRIAL_ENV)) and os.environ.get("LOCAL_RANK", "0") != "0"


@contextmanager
def ddp_trial(trial: DdpTrial) -> Iterator[None]:
    """On rank 0: publish the trial to the follower ranks; afterwards leave the process ready for the next one."""
    saved = dict(os.environ)
    os.environ.update(trial.to_env())
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        # Lightning leaves LOCAL_RANK/WORLD_SIZE/MASTER_PORT behind, which would make the next trial's
        # Trainer believe its processes were launched externally.
        os.environ.clear()
        os.environ.update(saved)
