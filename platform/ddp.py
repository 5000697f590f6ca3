"""DDP trials (``execution.devices_per_trial: K``): one Optuna trial and one MLflow run, trained on K processes.

Lightning's DDP launcher starts ranks 1..K-1 by re-running the *command line* (``python -m platform.study ...``)
with ``LOCAL_RANK`` set. Left alone, each rank would start a study of its own. So before ``fit`` rank 0 puts the
trial it is running into ``SASA_DDP_TRIAL``; a process that starts with that variable and a non-zero
``LOCAL_RANK`` is a *follower*: it rebuilds the same model, data and Trainer from the spec and the trial's design
point, joins the process group, trains, and exits without touching Optuna or MLflow. Rank 0 alone reports;
pruning decisions are taken on rank 0 and broadcast (see :mod:`platform.pruning`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

TRIAL_ENV = "SASA_DDP_TRIAL"


def ddp_follower_requested() -> bool:
    return bool(os.environ.get(TRIAL_ENV)) and os.environ.get("LOCAL_RANK", "0") != "0"


@contextmanager
def ddp_trial(payload: dict[str, Any]) -> Iterator[None]:
    """On rank 0: publish the trial to the follower ranks; afterwards leave the process ready for the next one."""
    saved = dict(os.environ)
    os.environ[TRIAL_ENV] = json.dumps(payload)
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        # Lightning leaves LOCAL_RANK/WORLD_SIZE/MASTER_PORT behind, which would make the next trial's
        # Trainer believe its processes were launched externally.
        os.environ.clear()
        os.environ.update(saved)


def run_ddp_follower() -> int:
    """Entry point of ranks ≥ 1: train the trial described in ``SASA_DDP_TRIAL``, report nothing."""
    import sasa
    from platform.data import build_datamodule
    from platform.pruning import OptunaPruning
    from platform.search_space import point_from_optuna, resolve
    from platform.spec import load_spec
    from platform.stores import resolve_stores
    from platform.study import build_parser
    from platform.train import train_trial

    payload = json.loads(os.environ[TRIAL_ENV])
    args = build_parser().parse_args()
    spec = load_spec(args.study, args.overrides)
    stores = resolve_stores(cli_storage=args.storage, cli_tracking=args.tracking_uri, spec_storage=spec.storage,
                            spec_tracking=spec.tracking, root=args.runs_dir)
    torch.set_num_threads(int(payload["threads"]))
    point = point_from_optuna(spec, payload["optuna_params"])
    options, train = resolve(spec, point)
    info = payload["data_info"]
    net = sasa.create_model(options.pop("name"), info["num_classes"], in_channels=info["channels"], **options)
    seed = int(payload["seed"])
    datamodule = build_datamodule(spec.data, batch_size=train.batch_size, seed=seed, cache_dir=stores.data_cache)
    callbacks = [OptunaPruning(None, spec.objective.metric)] if payload["pruning"] else []
    train_trial(
        net, datamodule, train=train, num_classes=info["num_classes"], monitor=spec.objective.metric,
        mode="max" if spec.objective.direction == "maximize" else "min", seed=seed,
        work_dir=Path(payload["work_dir"]), callbacks=callbacks, accelerator=payload["accelerator"],
        devices=int(payload["devices"]), strategy="ddp", progress_bar=False,
    )
    return 0
