"""LightningModule that trains any ``sasa`` backbone as an image classifier.

The network is built from its configuration or injected (lightning-hydra-template style): this module owns the
loss, one torchmetrics object per stage, and the optimiser/schedule from the study's ``train`` spec. The schedule
follows the paper's recipe: linear warm-up then cosine decay to zero, stepped per optimiser step.

GPU path: the steps never wait for the device (no ``.item()``, no ``if tensor``; the metrics skip their value
checks, and a non-finite training loss is caught from a device-side flag read every :data:`NONFINITE_CHECK_EVERY`
steps and at the epoch's end). ``compile`` (a mode: "default", "reduce-overhead", "max-autotune"; True means
"default") runs the network through ``torch.compile(mode=...)`` (``self.net`` stays the plain module: checkpoints
and the logged backbone keep their keys) and ``channels_last`` puts the network and every image batch in
channels_last memory format.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

import sasa

from ..records import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, SPLITS, STAT_ACC, STAT_ACC_TOP5, STAT_LOSS, metric_name
from ..spec.sections import TrainSpec

STAGES = SPLITS  # every stage logs records.STATS: records.LOGGED_METRICS is what this module logs
OPTIMIZERS = ("sgd", "adamw")
NONFINITE_CHECK_EVERY = 50  # training steps between host reads of the non-finite-loss flag


def _stage_metrics(num_classes: int) -> MetricCollection:
    # validate_args=False: the label checks read tensors on the host (a device sync per step).
    top_k = min(5, num_classes)
    return MetricCollection(
        {
            STAT_ACC: MulticlassAccuracy(num_classes=num_classes, top_k=1, average="micro", validate_args=False),
            STAT_ACC_TOP5: MulticlassAccuracy(num_classes=num_classes, top_k=top_k, average="micro",
                                           validate_args=False),
        }
    )


class ExampleMean(Metric):
    """A stage's mean loss over all its examples: per-batch mean losses weighted by their batch sizes.

    Written here because torchmetrics 1.9's ``MeanMetric(nan_strategy="disable")`` — the only setting without a
    NaN test read on the host at every update — drops the weights (its NaN-free path sets them to ones), so the
    logged loss was the plain mean of batch means, wrong whenever the last batch is smaller: measured 2.30165
    logged vs 2.30237 over the 270 digits test images (8 × 32 + 14) of a trial, predictions identical. Updates are
    device-side additions (no host read); the sums are reduced across DDP ranks.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("examples", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, examples: int) -> None:
        self.total += value.detach().float() * examples
        self.examples += examples

    def compute(self) -> torch.Tensor:
        return self.total / self.examples


def _mean() -> ExampleMean:
    return ExampleMean()


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


# Layers whose ``weight`` is decayed; nothing else is (biases, norms, embeddings).
DECAYED_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def decay_groups(net: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters of ``net`` split into (weight-decayed, not decayed), in ``named_parameters`` order."""
    decayed = {id(module.weight) for module in net.modules() if isinstance(module, DECAYED_LAYERS)}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in net.parameters():
        if param.requires_grad:
            (decay if id(param) in decayed else no_decay).append(param)
    return decay, no_decay


class SasaClassifier(pl.LightningModule):
    """Cross-entropy classifier around a ``sasa`` backbone (images → logits).

    ``model`` is the backbone's ``create_model`` configuration (``net.config``: name, num_classes, in_channels and
    options); it and the optimisation settings are saved as hyper-parameters, so
    ``SasaClassifier.load_from_checkpoint(path)`` rebuilds the module, backbone included. ``net`` hands in an
    already built backbone of that configuration (its weights are kept; not saved as a hyper-parameter). The
    optimisation settings have no defaults here: they are the study's ``train`` section (:class:`TrainSpec`),
    see :meth:`for_backbone`.

    Logs ``{stage}/loss``, ``{stage}/acc`` and ``{stage}/acc_top5`` per epoch for train/val/test.
    Weight decay applies to the weights of conv/linear layers only (:data:`DECAYED_LAYERS`); every other parameter
    — biases, norm scales/shifts, the relative embeddings ``rel_rows``/``rel_cols`` and the attention stem's
    position and mixture embeddings ``emb_row``/``emb_col``/``mix_embed`` (the paper's spatially-aware
    values) — get none. The paper does not say; this is the common practice for attention models (timm's
    default). See :func:`decay_groups`.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        *,
        optimizer: str,
        lr: float,
        momentum: float,
        weight_decay: float,
        warmup_epochs: float,
        label_smoothing: float,
        compile: bool | str = False,
        channels_last: bool = False,
        net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.save_hyperparameters(ignore=["net"])
        self.net = net if net is not None else sasa.create_model(**model)
        num_classes = int(model["num_classes"])
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_metrics = _stage_metrics(num_classes)
        self.val_metrics = _stage_metrics(num_classes)
        self.test_metrics = _stage_metrics(num_classes)
        self.train_loss, self.val_loss, self.test_loss = _mean(), _mean(), _mean()
        self._nonfinite: torch.Tensor | None = None  # device-side "a training loss was NaN/inf" flag
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None  # torch.compile(self.net), not a child

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> SasaClassifier:  # type: ignore[override]
        """Lightning's loader, with the file checked first: a path that is not a checkpoint of this module raises
        ``ValueError`` naming it (not torch's advice to unpickle it with ``weights_only=False``)."""
        shown = f"SasaClassifier.load_from_checkpoint: checkpoint_path={str(checkpoint_path)!r}"
        if isinstance(checkpoint_path, str | os.PathLike) and "://" not in str(checkpoint_path):
            path = Path(checkpoint_path)
            if not path.is_file():
                raise FileNotFoundError(f"{shown}: {'is a folder' if path.is_dir() else 'no such file'}; give a "
                                        "Lightning checkpoint (.ckpt) a trial wrote (runs/trials/<study>/...)")
        elif not hasattr(checkpoint_path, "read") and not isinstance(checkpoint_path, str):
            raise TypeError(f"{shown}: give a path (str or pathlib.Path) or an open binary file")
        try:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)  # type: ignore[return-value]
        except (pickle.UnpicklingError, EOFError, KeyError, RuntimeError) as exc:
            reason = {pickle.UnpicklingError: "not a file torch.save wrote", EOFError: "empty or cut short",
                      KeyError: f"it has no {exc} entry"}.get(type(exc))
            reason = reason or (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise ValueError(f"{shown} is not a SasaClassifier checkpoint ({reason}); give the "
                             "checkpoint file (.ckpt) of a trial, e.g. runs/trials/<study>/<trial>/*.ckpt") from None

    @classmethod
    def for_backbone(cls, net: nn.Module, train: TrainSpec) -> SasaClassifier:
        """The module training ``net`` (built by ``sasa.create_model``, so it has ``config``) as ``train`` says."""
        return cls(
            dict(net.config), optimizer=train.optimizer, lr=train.lr, momentum=train.momentum,
            weight_decay=train.weight_decay, warmup_epochs=train.warmup_epochs,
            label_smoothing=train.label_smoothing, compile=train.compile, channels_last=train.channels_last,
            net=net,
        )

    def configure_model(self) -> None:
        """On the training device, before the optimisers: channels_last and ``torch.compile`` as configured."""
        if self.hparams.get("channels_last"):
            self.net.to(memory_format=torch.channels_last)
        mode = self.compile_mode
        if mode is not None and self._compiled is None:
            # Not registered as a submodule: the state dict keeps the plain network's keys.
            object.__setattr__(self, "_compiled", torch.compile(self.net, mode=mode))

    @property
    def compile_mode(self) -> str | None:
        """The ``torch.compile`` mode the network trains with (None: not compiled); ``compile=True`` (modules
        saved before the modes existed) is ``"default"``."""
        value = self.hparams.get("compile")
        if value is True:
            return "default"
        return value or None

    def _run_net(self, images: torch.Tensor) -> torch.Tensor:
        if self.hparams.get("channels_last"):
            images = images.contiguous(memory_format=torch.channels_last)  # a no-op for batches already in it
        return self._compiled(images) if self._compiled is not None else self.net(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run_net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self._run_net(images)
        loss = self.criterion(logits, labels)
        if stage == SPLIT_TRAIN:  # read on the host every NONFINITE_CHECK_EVERY steps, not here
            bad = ~torch.isfinite(loss.detach())
            self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
        getattr(self, f"{stage}_loss").update(loss.detach(), images.shape[0])
        getattr(self, f"{stage}_metrics").update(logits.detach(), labels)
        return loss

    def _log_stage(self, stage: str) -> None:
        loss_metric: ExampleMean = getattr(self, f"{stage}_loss")
        metrics: MetricCollection = getattr(self, f"{stage}_metrics")
        values = {metric_name(stage, name): value for name, value in metrics.compute().items()}
        values[metric_name(stage, STAT_LOSS)] = loss_metric.compute()
        self.log_dict(values, prog_bar=stage != SPLIT_TEST, sync_dist=True)
        metrics.reset()
        loss_metric.reset()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, SPLIT_TRAIN)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, SPLIT_VAL)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, SPLIT_TEST)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if (batch_idx + 1) % NONFINITE_CHECK_EVERY == 0:
            self._check_finite()

    def _check_finite(self) -> None:
        # Fail the trial early instead of spending the budget on NaNs (one host read per check, not per step).
        if self._nonfinite is not None and bool(self._nonfinite):
            raise FloatingPointError(f"non-finite training loss (NaN or inf) by step {self.global_step}")

    def on_train_epoch_end(self) -> None:
        self._check_finite()
        self._log_stage(SPLIT_TRAIN)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_stage(SPLIT_VAL)
        else:
            self.val_metrics.reset()
            self.val_loss.reset()

    def on_test_epoch_end(self) -> None:
        self._log_stage(SPLIT_TEST)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        decay, no_decay = decay_groups(self.net)
        groups = [
            {"params": decay, "weight_decay": hp["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if hp["optimizer"] == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=hp["lr"], momentum=hp["momentum"], nesterov=hp["momentum"] > 0
            )
        else:  # "adamw" (checked in __init__)
            optimizer = torch.optim.AdamW(groups, lr=hp["lr"])
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        batches = float(self.trainer.num_training_batches)  # known once estimated_stepping_batches ran
        steps_per_epoch = batches if math.isfinite(batches) else total_steps / max(1, self.trainer.max_epochs or 1)
        warmup_steps = min(total_steps - 1, round(hp["warmup_epochs"] * steps_per_epoch))

        def _lambda(step: int) -> float:
            return warmup_cosine(step, warmup_steps=warmup_steps, total_steps=total_steps)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lambda)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
