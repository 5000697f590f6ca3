"""Train one trial: a Lightning Trainer over an injected backbone and data module.

The small train function of the platform (lightning-hydra-template style): it knows nothing about Optuna or
MLflow; those come in as Lightning callbacks. The best validation checkpoint is kept and the test metrics come
from it (loaded with ``weights_only=True``). A ``last.ckpt`` in ``work_dir`` from an interrupted attempt is
resumed from, so a retried trial continues from its last saved epoch. On a GPU, float32 matmuls may use TF32
(``torch.set_float32_matmul_precision("high")``) and cuDNN picks its fastest kernels (``cudnn.benchmark``, unless
``train.deterministic``): :func:`runtime_settings` says which, and the objective records it in MLflow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from torch import nn

from ..spec.sections import TrainSpec
from .classifier import SasaClassifier


@dataclass
class TrainOutcome:
    best_value: float | None
    best_epoch: int | None
    epochs_run: int
    test_metrics: dict[str, float]
    throughput: float
    fit_seconds: float = 0.0
    test_seconds: float = 0.0
    world_size: int = 1
    resumed_from: str | None = None
    data_wait_fraction: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)


class ThroughputMeter(pl.Callback):
    """Training images per second, measured over training batches only (validation excluded), and the share of the
    training loop's wall time spent waiting for data: from the epoch's start or the end of one training step to the
    start of the next (fetching the batch, moving it to the device). Times are the host's: on a GPU a step's time
    includes waiting for the device only where the host blocks (a full launch queue, a read of a device value)."""

    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self.wait_seconds = 0.0
        self._start = 0.0
        self._ready: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ready = time.perf_counter()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        self._start = time.perf_counter()
        if self._ready is not None:
            self.wait_seconds += self._start - self._ready

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._ready = time.perf_counter()
        self.seconds += self._ready - self._start
        self.images += int(batch[0].shape[0])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ready = None  # validation and the epoch's end are not data waits

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def data_wait_fraction(self) -> float:
        total = self.seconds + self.wait_seconds
        return self.wait_seconds / total if total > 0 else 0.0


def runtime_settings(train: TrainSpec, accelerator: str) -> dict[str, Any]:
    """The process-wide switches a trial runs with: TF32 matmuls and cuDNN autotuning on a GPU only.

    ``accelerator`` is the Trainer's ("gpu"/"cuda", "cpu" or "auto": a GPU when CUDA is visible). On CPU the
    current matmul precision is kept (CPU behaviour unchanged) and cuDNN is not used.
    """
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return {
        "float32_matmul_precision": "high" if gpu else torch.get_float32_matmul_precision(),
        "cudnn_benchmark": gpu and not train.deterministic,
    }


def _trainer_kwargs(train: TrainSpec, accelerator: str, devices: int | list[int], strategy: str) -> dict[str, Any]:
    settings = runtime_settings(train, accelerator)
    max_steps = train.max_steps if train.max_steps and train.max_steps > 0 else -1
    kwargs: dict[str, Any] = {
        "max_epochs": train.epochs if max_steps < 0 else None,
        "max_steps": max_steps,
        "accelerator": accelerator,
        "devices": devices,
        "strategy": strategy,
        "precision": train.precision,
        "gradient_clip_val": train.gradient_clip_val,
        "deterministic": train.deterministic,
        "benchmark": True if settings["cudnn_benchmark"] else None,  # None: Lightning leaves cuDNN as it is
        "logger": False,
        "num_sanity_val_steps": 0,
        "enable_model_summary": False,
    }
    if train.limit_train_batches is not None:
        kwargs["limit_train_batches"] = train.limit_train_batches
    if train.limit_val_batches is not None:
        kwargs["limit_val_batches"] = train.limit_val_batches
    return kwargs


def train_trial(
    net: nn.Module,
    datamodule: pl.LightningDataModule,
    *,
    train: TrainSpec,
    monitor: str,
    mode: str,
    seed: int,
    work_dir: Path,
    callbacks: list[pl.Callback],
    accelerator: str = "auto",
    devices: int | list[int] = 1,
    strategy: str = "auto",
    progress_bar: bool = True,
) -> tuple[TrainOutcome, SasaClassifier]:
    """Fit ``net`` on ``datamodule``, test the best checkpoint; returns the outcome and the trained module."""
    pl.seed_everything(seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision(runtime_settings(train, accelerator)["float32_matmul_precision"])
    module = SasaClassifier.for_backbone(net, train)
    checkpoint = ModelCheckpoint(
        dirpath=work_dir, filename="best", monitor=monitor, mode=mode, save_top_k=1, save_last=True
    )
    meter = ThroughputMeter()
    bars: list[pl.Callback] = [TQDMProgressBar(process_position=1)] if progress_bar else []
    trainer = pl.Trainer(
        **_trainer_kwargs(train, accelerator, devices, strategy),
        callbacks=[*callbacks, checkpoint, meter, *bars],
        enable_progress_bar=progress_bar,
        default_root_dir=work_dir,
    )
    last = work_dir / "last.ckpt"
    resume = str(last) if last.exists() else None
    fit_start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    fit_seconds = time.perf_counter() - fit_start

    best_path = checkpoint.best_model_path
    test_metrics: dict[str, float] = {}
    best_epoch = None
    test_seconds = 0.0
    if best_path:
        saved = torch.load(best_path, map_location="cpu", weights_only=True)
        module.load_state_dict(saved["state_dict"])
        best_epoch = int(saved["epoch"])
        test_start = time.perf_counter()
        results = trainer.test(module, datamodule=datamodule, verbose=False)
        test_seconds = time.perf_counter() - test_start
        test_metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    best = checkpoint.best_model_score
    outcome = TrainOutcome(
        best_value=float(best) if best is not None and torch.isfinite(best) else None,
        best_epoch=best_epoch,
        epochs_run=trainer.current_epoch,
        test_metrics=test_metrics,
        throughput=meter.images_per_second,
        fit_seconds=fit_seconds,
        test_seconds=test_seconds,
        world_size=trainer.world_size,
        resumed_from=resume,
        data_wait_fraction=meter.data_wait_fraction,
    )
    return outcome, module

