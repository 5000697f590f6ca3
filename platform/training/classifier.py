"""LightningModule that trains any ``sasa`` backbone as an image classifier.

The network is built from its configuration or injected (lightning-hydra-template style): this module owns the
loss, one torchmetrics object per stage, and the optimiser/schedule from the study's ``train`` spec. The schedule
follows the paper's recipe: linear warm-up then cosine decay to zero, stepped per optimiser step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

import sasa

from ..spec.sections import TrainSpec

STAGES = ("train", "val", "test")
OPTIMIZERS = ("sgd", "adamw")


def _stage_metrics(num_classes: int) -> MetricCollection:
    top_k = min(5, num_classes)
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=num_classes, top_k=1, average="micro"),
            "acc_top5": MulticlassAccuracy(num_classes=num_classes, top_k=top_k, average="micro"),
        }
    )


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
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()

    @classmethod
    def for_backbone(cls, net: nn.Module, train: TrainSpec) -> SasaClassifier:
        """The module training ``net`` (built by ``sasa.create_model``, so it has ``config``) as ``train`` says."""
        return cls(
            dict(net.config), optimizer=train.optimizer, lr=train.lr, momentum=train.momentum,
            weight_decay=train.weight_decay, warmup_epochs=train.warmup_epochs,
            label_smoothing=train.label_smoothing, net=net,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self.net(images)
        loss = self.criterion(logits, labels)
        if stage == "train" and not torch.isfinite(loss):
            # Fail the trial at once instead of spending the budget on NaNs.
            raise FloatingPointError(f"non-finite training loss {loss.item()} at step {self.global_step}")
        getattr(self, f"{stage}_loss").update(loss.detach(), weight=images.shape[0])
        getattr(self, f"{stage}_metrics").update(logits.detach(), labels)
        return loss

    def _log_stage(self, stage: str) -> None:
        loss_metric: MeanMetric = getattr(self, f"{stage}_loss")
        metrics: MetricCollection = getattr(self, f"{stage}_metrics")
        values = {f"{stage}/{name}": value for name, value in metrics.compute().items()}
        values[f"{stage}/loss"] = loss_metric.compute()
        self.log_dict(values, prog_bar=stage != "test", sync_dist=True)
        metrics.reset()
        loss_metric.reset()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_stage("train")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_stage("val")
        else:
            self.val_metrics.reset()
            self.val_loss.reset()

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")

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
