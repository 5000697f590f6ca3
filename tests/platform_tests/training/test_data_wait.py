"""The data-wait share of the training loop (``ThroughputMeter.data_wait_fraction``, recorded per trial as the
``data_wait_fraction`` user attribute and the ``time/data_wait_frac`` MLflow metric): measured on real Lightning
training with a loader that is slow on purpose and with one that is not."""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from platform.training.trainer import ThroughputMeter


class _Images(Dataset):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(self.delay_s)
        return torch.full((1, 4, 4), float(index)), torch.tensor(index % 2)


class _Slow(pl.LightningModule):
    """A linear classifier whose step takes ``step_s`` (a host-side sleep stands in for the compute)."""

    def __init__(self, step_s: float) -> None:
        super().__init__()
        self.step_s = step_s
        self.linear = torch.nn.Linear(16, 2)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        time.sleep(self.step_s)
        images, labels = batch
        return torch.nn.functional.cross_entropy(self.linear(images.flatten(1)), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fraction(tmp_path: Path, delay_s: float, step_s: float) -> ThroughputMeter:
    meter = ThroughputMeter()
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", callbacks=[meter], default_root_dir=tmp_path)
    trainer.fit(_Slow(step_s), DataLoader(_Images(delay_s), batch_size=4))
    return meter


def test_a_slow_loader_shows_as_data_wait_and_a_fast_one_does_not(tmp_path: Path) -> None:
    # 4 images × 50 ms per batch against 10 ms steps (plus Lightning's own step overhead): most of the loop waits.
    slow = _fraction(tmp_path, delay_s=0.05, step_s=0.01)
    assert slow.images == 32 and 0.6 < slow.data_wait_fraction < 1.0
    # No delay against 100 ms steps: the waits are the loader's own overhead, a small share.
    fast = _fraction(tmp_path, delay_s=0.0, step_s=0.1)
    assert fast.images == 32 and 0.0 < fast.data_wait_fraction < 0.25
