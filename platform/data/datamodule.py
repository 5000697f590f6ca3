"""The study runner's data layer: a ``DataSpec`` → a prepared cache → a LightningDataModule, in one of two modes.

``data.mode`` chooses the path (``auto`` picks by the decoded size, see :func:`choose_mode`):

- ``memory`` (:mod:`.memory`): every image decoded once to a uint8 tensor cache ``<cache_dir>/<key>.pt``; batches
  are indexed from it, then normalised and augmented (random crop with black padding, horizontal flip) on the
  training device, seeded per trial.
- ``stream`` (:mod:`.streaming`): a small index ``<cache_dir>/<key>.stream.pt`` (arrow files, row numbers,
  statistics); images are decoded in DataLoader workers with the ImageNet pipeline (RandomResizedCrop + flip for
  training, resize + centre crop for evaluation) and normalised on the training device.

``<key>`` (:mod:`.cache`) hashes the data fields that change the prepared data; both files are written
atomically (temp file + ``os.replace``). The study CLI calls :func:`prepare_data_once` once before any worker
starts; each trial's ``setup()`` only loads the file.

Batches leave the loaders as uint8. Under a Lightning ``Trainer`` the module's ``on_after_batch_transfer`` turns
them into normalised float32 on the device; a module used on its own (no trainer attached when a loader is made)
yields the same normalised (and, for training, augmented) float32 batches on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from .cache import MODES, available_memory, cache_file, choose_mode, stream_file
from .image_checks import check_local_images
from .memory import TensorBatches, build_memory_cache, passthrough, write_atomically
from .shards import evaluation_sampler
from .sources import DataError, load_source, select_splits
from .streaming import StreamImages, build_stream_index, check_stream_index
from .transforms import normalise, pad_crop_flip

__all__ = ["MODES", "DataError", "ImageDataModule", "available_memory", "build_datamodule", "cache_file",
           "choose_mode", "prepare_data_once", "stream_file"]

_PREFETCH = 4  # batches each worker keeps ready


def _source_images(data_spec: Any, dd: Any) -> int:
    named = {data_spec.train_split, data_spec.val_split, data_spec.test_split} - {None}
    return sum(len(dd[s]) for s in named if s in dd)


def prepare_data_once(data_spec: Any, cache_dir: str | os.PathLike[str]) -> Path:
    """Build the cache (memory) or index (stream) for ``data_spec`` unless present; return its file.

    Call it once before starting worker processes; a second call (or a worker) finds the file and returns at
    once (``auto`` takes whichever exists, the in-memory cache first). Local imagefolder/parquet sources are
    converted by ``datasets`` under ``<cache_dir>/hf`` (an imagefolder's arrow file holds paths, not pixels).
    """
    mode = getattr(data_spec, "mode", "auto")
    memory, stream = cache_file(data_spec, cache_dir), stream_file(data_spec, cache_dir)
    if mode in ("auto", "memory") and memory.is_file():
        return memory
    if mode in ("auto", "stream") and stream.is_file():
        return stream
    check_local_images(data_spec)  # links and stray files the loader would drop or misread without a word
    memory.parent.mkdir(parents=True, exist_ok=True)
    dd = load_source(data_spec, build_cache_dir=memory.parent / "hf")
    if choose_mode(data_spec, _source_images(data_spec, dd)) == "memory":
        splits, class_names = select_splits(dd, data_spec)
        write_atomically(memory, build_memory_cache(data_spec, splits, class_names))
        return memory
    payload = build_stream_index(data_spec, dd, spill_dir=memory.parent / f"{memory.stem}.spill")
    write_atomically(stream, payload)
    return stream


# -------------------------------------------------------------------------------------------- datamodule
class _Standalone:
    """A loader whose batches go through :meth:`ImageDataModule.prepare_batch` on the CPU (no trainer attached)."""

    def __init__(self, loader: DataLoader, module: ImageDataModule, train: bool) -> None:
        self.loader, self.module, self.train = loader, module, train

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            yield self.module.prepare_batch(batch, train=self.train)


class ImageDataModule(pl.LightningDataModule):
    """Train/val/test loaders of one ``DataSpec`` (see :func:`build_datamodule` and the module docstring).

    After ``setup()``: ``mode``, ``num_classes``, ``in_channels``, ``image_size``, ``class_names``, ``mean``,
    ``std``, ``num_train``/``num_val``/``num_test``, ``example_batch(n)`` and ``dataset_info()``.
    """

    def __init__(
        self, data_spec: Any, *, batch_size: int, seed: int, cache_dir: str | os.PathLike[str], num_workers: int
    ) -> None:
        super().__init__()
        self.data_spec = data_spec
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.cache_dir = Path(cache_dir)
        self._data: dict[str, Any] | None = None
        self._augment_generator = torch.Generator().manual_seed(seed + 1)
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def prepare_data(self) -> None:  # Lightning calls this once per node, before setup
        prepare_data_once(self.data_spec, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self._data is None:  # prepare_data_once is a no-op when the CLI already built the cache
            path = prepare_data_once(self.data_spec, self.cache_dir)
            data = torch.load(path, weights_only=True)
            if data.get("mode") == "stream":
                check_stream_index(data)
            self._data = data

    def _get(self, key: str) -> Any:
        if self._data is None:
            raise RuntimeError("ImageDataModule: call setup() before reading data properties or loaders")
        return self._data[key]

    @property
    def mode(self) -> str:
        """``memory`` or ``stream``: the path this module's data took."""
        return str(self._get("mode"))

    def _count(self, split: str) -> int:
        return len(self._get("splits")[split]["rows"]) if self.mode == "stream" else len(self._get(f"{split}_y"))

    @property
    def class_names(self) -> list[str]:
        return list(self._get("class_names"))

    @property
    def num_classes(self) -> int:
        return len(self._get("class_names"))

    @property
    def in_channels(self) -> int:
        return int(self._get("channels")) if self.mode == "stream" else int(self._get("train_x").shape[1])

    @property
    def image_size(self) -> int:
        return int(self.data_spec.image_size) if self.mode == "stream" else int(self._get("train_x").shape[-1])

    @property
    def mean(self) -> list[float]:
        return self._get("mean").tolist()

    @property
    def std(self) -> list[float]:
        return self._get("std").tolist()

    @property
    def num_train(self) -> int:
        return self._count("train")

    @property
    def num_val(self) -> int:
        return self._count("val")

    @property
    def num_test(self) -> int:
        return self._count("test")

    def example_batch(self, n: int = 2) -> torch.Tensor:
        """The first ``n`` training images, normalised (n, C, S, S) float32, without augmentation."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if self.mode == "stream":
            images = self._dataset("train", train=False)
            x = torch.stack([images[i][0] for i in range(min(n, len(images)))])
        else:
            x = self._get("train_x")[:n]
        return self.prepare_batch((x, torch.zeros(len(x), dtype=torch.int64)), train=False)[0]

    def dataset_info(self) -> dict[str, Any]:
        """Flat facts about the data, for logging as run parameters."""
        spec = self.data_spec
        name = {"hf": spec.name, "local": os.fspath(spec.path) if spec.path is not None else None}
        return {
            "source": spec.source,
            "name": name.get(spec.source, spec.source),
            "mode": self.mode,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "num_test": self.num_test,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "channels": self.in_channels,
        }

    # ---------------------------------------------------------------------------------- batches on device
    def _statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._stats:
            self._stats[device] = (self._get("mean").to(device), self._get("std").to(device))
        return self._stats[device]

    def prepare_batch(self, batch: tuple[torch.Tensor, torch.Tensor], *, train: bool
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images → normalised float32 on their device; in memory mode, training batches are augmented."""
        x, y = batch
        mean, std = self._statistics(x.device)
        x = normalise(x, mean, std)
        augment = getattr(self.data_spec, "augment", None)
        padding = int(getattr(augment, "random_crop_padding", 0) or 0)
        flip = bool(getattr(augment, "horizontal_flip", False))
        if train and self.mode == "memory" and (padding > 0 or flip):
            x = pad_crop_flip(x, padding=padding, flip=flip, fill=-mean / std, generator=self._augment_generator)
        return x, y

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        return self.prepare_batch(batch, train=bool(trainer is not None and trainer.training))

    # --------------------------------------------------------------------------------------------- loaders
    def _dataset(self, split: str, *, train: bool) -> Any:
        if self.mode == "stream":
            return StreamImages(self.data_spec, self._get("splits")[split], split=split, train=train,
                                channels=self.in_channels, seed=self.seed + 1)
        return TensorBatches(self._get(f"{split}_x"), self._get(f"{split}_y"))

    def dataloader(self, split: str, *, train: bool, prepared: bool | None = None) -> Any:
        """The loader of ``split`` (``train``: shuffled and, in stream mode, cropped/flipped by the workers).

        ``prepared`` True: batches go through :meth:`prepare_batch` on the CPU (normalised float32); False: raw
        uint8 batches, for a caller that moves them to a device and calls :meth:`prepare_batch` there; None (the
        Lightning hooks): False when a trainer is attached (``on_after_batch_transfer`` prepares them), else True.
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be one of 'train', 'val', 'test'; got {split!r}")
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": torch.cuda.is_available(),
            "drop_last": False,
        }
        if self.num_workers > 0:
            options["prefetch_factor"] = _PREFETCH
        if self.mode == "memory":
            options["collate_fn"] = passthrough
        if train:
            options.update(shuffle=True, generator=torch.Generator().manual_seed(self.seed))
            self._augment_generator.manual_seed(self.seed + 1)  # each fit draws the same augmentation stream
        dataset = self._dataset(split, train=train)
        if not train and (shards := evaluation_sampler(dataset, split=split)) is not None:
            options["sampler"] = shards  # under DDP: each example counted once (see .shards)
        loader = DataLoader(dataset, **options)
        if prepared is None:
            prepared = self.trainer is None
        return _Standalone(loader, self, train) if prepared else loader

    def train_dataloader(self) -> Any:
        return self.dataloader("train", train=True)

    def val_dataloader(self) -> Any:
        return self.dataloader("val", train=False)

    def test_dataloader(self) -> Any:
        return self.dataloader("test", train=False)


def build_datamodule(
    data_spec: Any,
    *,
    batch_size: int,
    seed: int,
    cache_dir: str | os.PathLike[str],
    num_workers: int = 0,
) -> ImageDataModule:
    """An :class:`ImageDataModule` for ``data_spec`` with ``num_workers`` loader processes (the study passes
    ``execution.data_workers``)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    return ImageDataModule(data_spec, batch_size=batch_size, seed=seed, cache_dir=cache_dir,
                           num_workers=num_workers)
