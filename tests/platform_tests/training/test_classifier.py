"""SasaClassifier saves its hyper-parameters (backbone configuration included): ``load_from_checkpoint`` rebuilds
the same module, and the trainer's ``weights_only`` reload of the best checkpoint still works."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import sasa
from platform.records import LOGGED_METRICS, METRIC_TEST_LOSS
from platform.spec import TrainSpec
from platform.training import SasaClassifier


def _fit_one_step(module: SasaClassifier, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    images, labels = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)
    trainer.fit(module, loader, loader)
    path = tmp_path / "module.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_load_from_checkpoint_rebuilds_the_module(tmp_path: Path) -> None:
    net = sasa.create_model("resnet26", 3, in_channels=1, width=0.1, small_input=True, backbone="attention",
                            heads=2, kernel_size=3)
    train = TrainSpec(epochs=1, batch_size=4, warmup_epochs=0, lr=0.05, weight_decay=0.001)
    module = SasaClassifier.for_backbone(net, train)
    path = _fit_one_step(module, tmp_path)

    loaded = SasaClassifier.load_from_checkpoint(path, weights_only=True)
    assert loaded.net.config == net.config
    assert (loaded.hparams.lr, loaded.hparams.weight_decay, loaded.hparams.optimizer) == (0.05, 0.001, "sgd")
    module.eval()
    loaded.eval()
    example = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(module(example), loaded(example))
    saved = torch.load(path, map_location="cpu", weights_only=True)  # as training/trainer.py reloads the best one
    assert saved["hyper_parameters"]["model"]["kernel_size"] == 3


def test_unknown_optimizer_is_refused() -> None:
    net = sasa.create_model("resnet26", 3, in_channels=1, width=0.1, small_input=True)
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adamw"):
        SasaClassifier(net.config, optimizer="adam", lr=0.1, momentum=0.9, weight_decay=0.0, warmup_epochs=0.0,
                       label_smoothing=0.0)


def test_logged_loss_is_the_mean_over_examples_with_an_uneven_last_batch(tmp_path: Path) -> None:
    """test/loss (as val/loss and train/loss) is the cross-entropy averaged over every example, not the plain mean
    of batch means: 10 examples in batches of 4, 4 and 2 weigh the last batch by 2, not by a third."""
    torch.manual_seed(0)
    net = sasa.create_model("resnet26", 3, in_channels=1, width=0.1, small_input=True, backbone="conv")
    module = SasaClassifier.for_backbone(net, TrainSpec(epochs=1, batch_size=4, warmup_epochs=0, lr=0.05))
    images, labels = torch.randn(10, 1, 8, 8), torch.randint(0, 3, (10,))
    images[8:] *= 100.0  # confident (so different) logits in the last batch only
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)
    logged = trainer.test(module, loader, verbose=False)[0][METRIC_TEST_LOSS]

    module.eval()
    with torch.no_grad():
        per_batch = [(torch.nn.functional.cross_entropy(net(x), y), len(y)) for x, y in loader]
    over_examples = sum(float(loss) * n for loss, n in per_batch) / len(labels)
    mean_of_batches = sum(float(loss) for loss, _ in per_batch) / len(per_batch)
    assert abs(over_examples - mean_of_batches) > 1e-3  # the two really differ here
    assert logged == pytest.approx(over_examples, rel=1e-6)


def test_the_module_logs_exactly_the_metric_names_of_records(tmp_path: Path) -> None:
    """``records.LOGGED_METRICS`` (what the spec accepts as an objective) is what the classifier logs: a metric
    added to records' STATS without being computed here, or the other way round, fails."""
    torch.manual_seed(0)
    net = sasa.create_model("resnet26", 3, in_channels=1, width=0.1, small_input=True, backbone="conv")
    module = SasaClassifier.for_backbone(net, TrainSpec(epochs=1, batch_size=4, warmup_epochs=0, lr=0.05))
    loader = DataLoader(TensorDataset(torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))), batch_size=4)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path,
                         num_sanity_val_steps=0)
    trainer.fit(module, loader, loader)
    logged = set(trainer.callback_metrics)
    logged |= set(trainer.test(module, loader, verbose=False)[0])
    assert logged == set(LOGGED_METRICS)
