"""Pins the LightningModule's optimiser: which parameters get weight decay, and the warm-up + cosine schedule.

One real ``Trainer.fit`` of ``SasaClassifier`` around a real full-attention ResNet-26 with the attention stem
(``backbone="full"``): every parameter kind the ``sasa`` models have (conv/linear weights, batch-norm scales and
shifts, biases, relative embeddings, the stem's position and mixture embeddings) is present. The learning rate is
read at every optimiser step and checked against the paper's recipe written out here: linear warm-up over the
warm-up epochs (counted in steps), then cosine decay to 0 at the last step (Ramachandran et al., 2019, training
recipe: warm-up epochs, then cosine decay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import sasa
from platform.training import SasaClassifier

BATCHES_PER_EPOCH = 4
EPOCHS = 3
WARMUP_EPOCHS = 1.5  # → 6 warm-up steps of 12
BASE_LR = 0.05
WEIGHT_DECAY = 5e-4
NUM_CLASSES = 10
# Parameters that are not conv/linear weights, by their name (the decision in platform/training/classifier.py).
EMBEDDINGS = ("rel_rows", "rel_cols", "emb_row", "emb_col", "mix_embed")


class LrRecorder(pl.Callback):
    """The learning rate of every parameter group as the optimiser step for batch ``i`` will use it."""

    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, idx: int) -> None:
        self.lrs.append([group["lr"] for group in trainer.optimizers[0].param_groups])


@dataclass
class Fitted:
    module: SasaClassifier
    optimizer: torch.optim.Optimizer
    lrs: list[list[float]] = field(default_factory=list)


def _net() -> nn.Module:
    return sasa.create_model("resnet26", NUM_CLASSES, backbone="full", stem="attention", small_input=True,
                             width=0.25, heads=2, kernel_size=3, in_channels=1)


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    torch.manual_seed(0)
    images = torch.randn(BATCHES_PER_EPOCH * 2, 1, 8, 8)  # (N, C, H, W): batches of 2 digits-sized images
    labels = torch.randint(0, NUM_CLASSES, (BATCHES_PER_EPOCH * 2,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=2)
    net = _net()
    module = SasaClassifier(net.config, optimizer="sgd", lr=BASE_LR, momentum=0.9, weight_decay=WEIGHT_DECAY,
                            warmup_epochs=WARMUP_EPOCHS, label_smoothing=0.0, net=net)
    recorder = LrRecorder()
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=1, callbacks=[recorder])
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    return Fitted(module, trainer.optimizers[0], recorder.lrs)


def _names_by_group(fitted: Fitted) -> list[set[str]]:
    name_of = {id(p): n for n, p in fitted.module.net.named_parameters()}
    return [{name_of[id(p)] for p in group["params"]} for group in fitted.optimizer.param_groups]


def test_weight_decay_only_on_conv_and_linear_weights(fitted: Fitted) -> None:
    groups = fitted.optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [WEIGHT_DECAY, 0.0]
    decayed, free = _names_by_group(fitted)
    net = fitted.module.net
    everything = {n for n, p in net.named_parameters() if p.requires_grad}
    assert decayed | free == everything and not decayed & free  # every parameter in exactly one group

    layers = dict(net.named_modules())
    conv_linear = {f"{m}.weight" for m, mod in layers.items() if isinstance(mod, nn.Conv2d | nn.Linear)}
    assert decayed == conv_linear
    for name in free:
        owner = layers[name.rpartition(".")[0]]
        leaf = name.rpartition(".")[2]
        assert leaf == "bias" or leaf in EMBEDDINGS or isinstance(owner, nn.BatchNorm2d), name

    # The decision, spelled out: the attention stem's position and mixture embeddings get no weight decay
    # (nor do the relative embeddings of the stem and of every SASA layer); its projections do.
    for name in ("stem.emb_row", "stem.emb_col", "stem.mix_embed", "stem.rel_rows", "stem.rel_cols",
                 "layer1.0.conv2.rel_rows", "layer4.0.conv2.rel_cols", "fc.bias"):
        assert name in free, name
    for name in ("stem.query.weight", "stem.key.weight", "stem.value.weight", "layer1.0.conv2.query.weight",
                 "layer1.0.conv1.weight", "fc.weight"):
        assert name in decayed, name
    assert any(n.endswith("bn1.weight") for n in free) and any(n.endswith("bn1.bias") for n in free)


def test_optimiser_is_nesterov_sgd_with_the_given_momentum(fitted: Fitted) -> None:
    assert isinstance(fitted.optimizer, torch.optim.SGD)
    for group in fitted.optimizer.param_groups:
        assert group["momentum"] == 0.9 and group["nesterov"] is True and group["initial_lr"] == BASE_LR


def _expected_lr(step: int) -> float:
    """The paper's schedule, written out: linear warm-up to BASE_LR over 6 steps, cosine to 0 at step 12."""
    total = BATCHES_PER_EPOCH * EPOCHS
    warmup = round(WARMUP_EPOCHS * BATCHES_PER_EPOCH)
    if step < warmup:
        return BASE_LR * (step + 1) / warmup
    return BASE_LR * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def test_warmup_then_cosine_per_optimiser_step(fitted: Fitted) -> None:
    lrs = fitted.lrs
    assert len(lrs) == BATCHES_PER_EPOCH * EPOCHS
    for step, per_group in enumerate(lrs):
        assert per_group[0] == per_group[1], step  # both groups follow one schedule
        assert per_group[0] == pytest.approx(_expected_lr(step), rel=1e-9, abs=1e-12), step
    first = [g[0] for g in lrs]
    # Spot checks of the shape: linear warm-up, peak right after it, half-way down the cosine, stepped within
    # an epoch (per step, not per epoch), and ~0 at the end.
    assert first[0] == pytest.approx(BASE_LR / 6) and first[5] == pytest.approx(BASE_LR)
    assert first[6] == pytest.approx(BASE_LR) and first[9] == pytest.approx(BASE_LR / 2)
    assert len(set(first[:BATCHES_PER_EPOCH])) == BATCHES_PER_EPOCH
    assert first[-1] == pytest.approx(BASE_LR * 0.5 * (1 + math.cos(math.pi * 5 / 6)))
    assert fitted.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # after the last step
