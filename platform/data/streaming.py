"""The streaming path: images stay in their files (or arrow shards) and are decoded in DataLoader workers.

Prepare (:func:`build_stream_index`, once, before any trial): the selected splits are recorded as the arrow files
``datasets`` already holds (an imagefolder's arrow file holds only paths; parquet, Hub and ``save_to_disk`` data
are arrow shards) plus the row numbers of each split; class names, channels and the per-channel mean/std (of up
to :data:`STAT_SAMPLES` training images, seeded, after the evaluation transform) are stored beside them. Nothing
is decoded up front, so preparing ImageNet costs one pass over the file list, not over the pixels.

Load (:class:`StreamImages`): each worker process memory-maps the arrow files, reads one record, decodes it with
PIL and applies :class:`.transforms.TrainTransform` (RandomResizedCrop + flip) or :class:`.transforms.EvalTransform`
(resize + centre crop); batches are uint8 and are normalised on the training device. The main process holds only
the row numbers, so its memory does not grow with the images (the benchmark measures it: ``benchmarks.data``).

Reproducibility: the seed of each training image's crop and flip is drawn from a generator seeded by the trial seed
(``num_workers`` 0) or by the worker's seed, which the DataLoader derives from its seeded generator: the same seed
and the same ``num_workers`` give the same batches, run after run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from .image_checks import named, stream_image_problems
from .memory import SPLITS
from .sources import DataError, select_splits
from .transforms import EvalTransform, TrainTransform, decode_image, eval_resize_for

__all__ = ["STAT_SAMPLES", "StreamImages", "build_stream_index", "check_stream_index"]

STAT_SAMPLES = 512  # training images whose pixels give the stream's mean/std (and channel count)
_ROW = "__sasa_row__"


def _arrow_files(ds: datasets.Dataset, spill: Path) -> list[str]:
    """The arrow files behind ``ds`` (saved under ``spill`` first when it lives only in memory)."""
    files = [f["filename"] for f in ds.cache_files]
    if files:
        return files
    ds.save_to_disk(spill)
    return [f["filename"] for f in datasets.load_from_disk(spill).cache_files]


def _open(files: list[str], rows: torch.Tensor) -> datasets.Dataset:
    parts = [datasets.Dataset.from_file(f) for f in files]
    whole = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    return whole.select(rows.numpy())


def build_stream_index(data_spec: Any, dd: datasets.DatasetDict, spill_dir: Path) -> dict[str, Any]:
    """The payload of a stream cache file for ``data_spec`` over the loaded source ``dd``."""
    numbered = datasets.DatasetDict({n: ds.add_column(_ROW, np.arange(len(ds))) for n, ds in dd.items()})
    splits, class_names = select_splits(numbered, data_spec)
    origin = {"train": data_spec.train_split, "val": data_spec.val_split or data_spec.train_split,
              "test": data_spec.test_split or data_spec.train_split}
    index: dict[str, Any] = {}
    for split in SPLITS:
        source = origin[split]
        rows = torch.as_tensor(np.asarray(splits[split].with_format("numpy")[_ROW], dtype=np.int64))
        index[split] = {"files": _arrow_files(dd[source], spill_dir / source), "rows": rows}
    _check_images(data_spec, index)
    payload: dict[str, Any] = {"mode": "stream", "class_names": class_names, "splits": index}
    payload.update(_sample_statistics(data_spec, index["train"]))
    return payload


def _check_images(data_spec: Any, index: dict[str, Any]) -> None:
    """Every image of every split decodes (not only the sampled training images), before anything is built."""
    splits = {}
    for split in SPLITS:
        records = StreamImages(data_spec, index[split], split=split, train=False, channels=None, seed=0)._records()
        splits[split] = (records, data_spec.image_column)
    problems = stream_image_problems(splits)
    if problems:
        raise DataError(named(problems, "broken images"))


def _sample_statistics(data_spec: Any, train: dict[str, Any]) -> dict[str, Any]:
    """Channels and per-channel mean/std (in [0, 1]) of a seeded sample of evaluation-transformed train images."""
    images = StreamImages(data_spec, train, split="train", train=False, channels=None, seed=0)
    count = len(images)
    picks = np.random.default_rng(data_spec.split_seed).permutation(count)[: min(STAT_SAMPLES, count)]
    fixed = None if data_spec.grayscale is None else (1 if data_spec.grayscale else 3)
    sums: list[tuple[torch.Tensor, torch.Tensor]] = []  # per image: (C,) sum and sum of squares, in [0, 1]
    for i in picks:  # one image at a time: memory stays flat however large the sample
        pixels = _channels(images[int(i)][0], fixed).to(torch.float64).div_(255.0)  # (C, S, S)
        sums.append((pixels.sum(dim=(1, 2)), pixels.square().sum(dim=(1, 2))))
    channels = fixed or max(len(t) for t, _ in sums)  # colour if any sampled image is colour
    total = sum((t.expand(channels) for t, _ in sums), torch.zeros(channels, dtype=torch.float64))
    squares = sum((q.expand(channels) for _, q in sums), torch.zeros(channels, dtype=torch.float64))
    count = len(sums) * int(data_spec.image_size) ** 2
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-6)
    return {"channels": channels, "mean": mean.float(), "std": std.float()}


def _channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8 (C, H, W) → ``channels`` channels (grey repeated; colour to ITU-R 601 luma); None keeps them."""
    if channels is None or x.shape[0] == channels:
        return x
    if channels == 3:
        return x.expand(3, -1, -1)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (x.float() * luma).sum(dim=0, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)


class StreamImages(Dataset):
    """One split of a stream index: item ``i`` → (uint8 (C, S, S), label), decoded where it is asked for."""

    def __init__(self, data_spec: Any, entry: dict[str, Any], *, split: str, train: bool, channels: int | None,
                 seed: int) -> None:
        self.files, self.rows = list(entry["files"]), entry["rows"]
        self.image_column, self.label_column = data_spec.image_column, data_spec.label_column
        self.split, self.train, self.channels, self.seed = split, train, channels, int(seed)
        size = int(data_spec.image_size)
        if train:
            self.transform: Any = TrainTransform(size, scale=tuple(data_spec.augment.crop_scale),
                                                 flip=data_spec.augment.horizontal_flip)
        else:
            self.transform = EvalTransform(size, eval_resize_for(size, data_spec.eval_resize))
        self._data: datasets.Dataset | None = None  # opened lazily in the process that reads (not pickled)
        self._generator: torch.Generator | None = None
        self._generator_for: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None, "_generator": None, "_generator_for": None}

    def _records(self) -> datasets.Dataset:
        if self._data is None:
            data = _open(self.files, self.rows).select_columns([self.image_column, self.label_column])
            if isinstance(data.features[self.image_column], datasets.Image):
                data = data.cast_column(self.image_column, datasets.Image(decode=False))
            self._data = data
        return self._data

    def _next_seed(self) -> int:
        info = get_worker_info()
        owner = info.seed if info is not None else self.seed
        if self._generator is None or self._generator_for != owner:
            self._generator, self._generator_for = torch.Generator().manual_seed(owner), owner
        return int(torch.randint(0, 2**62, (1,), generator=self._generator))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < len(self.rows):
            raise IndexError(f"index {index} out of range for {len(self.rows)} images")
        record = self._records()[int(index)]
        where = f"split {self.split}, row {int(self.rows[index])}"
        image = decode_image(record[self.image_column], where)
        out = self.transform(image, self._next_seed()) if self.train else self.transform(image)
        return _channels(out, self.channels).contiguous(), int(record[self.label_column])


def check_stream_index(payload: dict[str, Any]) -> None:
    """A stream cache whose arrow files are gone (a cleared ``datasets`` cache) → DataError saying what to do."""
    for split, entry in payload["splits"].items():
        missing = [f for f in entry["files"] if not Path(f).is_file()]
        if missing:
            raise DataError(f"the streaming index of split {split!r} points at arrow files that no longer exist "
                            f"({missing[0]}); delete the stream cache file to rebuild it")
