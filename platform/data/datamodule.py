"""The study runner's data layer: a ``DataSpec`` → normalised in-memory tensors → a LightningDataModule.

Pipeline (``prepare_data_once``): load the source (:mod:`.sources`: sklearn digits, a Hugging Face Hub
dataset, or local imagefolder/parquet/save_to_disk data) → pick or carve train/val/test (seeded, stratified)
→ decode every image once to float32 ``(N, C, S, S)`` in [0, 1], resized to ``S = image_size`` with bilinear
interpolation (antialiased when shrinking) → set channels (``grayscale``) → per-channel mean/std from the
training split only → normalise all splits → ``torch.save`` to ``<cache_dir>/<hash of the DataSpec>.pt``,
written atomically (temp file + ``os.replace``) so concurrent workers never see a partial file.

``ImageDataModule.setup`` only loads that file (``torch.load(weights_only=True)``). Training batches get the
spec's augmentation (random crop with black padding, horizontal flip) on the CPU in ``collate_fn``, driven by a
``torch.Generator`` seeded from the trial seed, so a trial's batches are the same every run.

Everything is held in memory as float32: CIFAR-10 (60k × 3 × 32 × 32) is about 740 MB, and building it peaks at
about twice that; datasets much beyond a few GB need a streaming loader instead.
"""

from __future__ import annotations

import glob
import hashlib
import io
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from .augment import AugmentCollate, augment_batch
from .sources import DataError, load_source, select_splits

__all__ = ["DataError", "ImageDataModule", "augment_batch", "build_datamodule", "cache_file", "prepare_data_once"]

CACHE_VERSION = 1  # bump when the prepared-tensor layout or preprocessing changes
SPLITS = ("train", "val", "test")
_KEY_FIELDS = (
    "source", "name", "config", "path", "format", "image_column", "label_column", "train_split", "val_split",
    "test_split", "val_fraction", "test_fraction", "split_seed", "image_size", "grayscale", "max_train_samples",
)  # fmt: skip
_DECODE_BATCH = 512


# --------------------------------------------------------------------------------------------- cache key
def _local_fingerprint(path: Any) -> list[list[Any]]:
    """(relative name, size, mtime_ns) of every file under a local source, so edited data rebuilds the cache."""
    root = Path(os.fspath(path))
    if root.is_file():
        stat = root.stat()
        return [[root.name, stat.st_size, stat.st_mtime_ns]]
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file())
    else:  # a glob of parquet files (or a path that does not exist: loading reports it)
        files = sorted(Path(p) for p in glob.glob(os.fspath(path), recursive=True))
    return [[os.fspath(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def cache_file(data_spec: Any, cache_dir: str | os.PathLike[str]) -> Path:
    """Where the prepared tensors for ``data_spec`` live: ``<cache_dir>/<sha256 of the data fields>.pt``."""
    key: dict[str, Any] = {f: getattr(data_spec, f) for f in _KEY_FIELDS}
    key["version"] = CACHE_VERSION
    if key["source"] == "local" and key["path"] is not None:
        key["path"] = os.path.abspath(os.fspath(key["path"]))
        key["files"] = _local_fingerprint(key["path"])
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return Path(cache_dir) / f"{digest}.pt"


# ------------------------------------------------------------------------------------------- decoding
def _item_to_chw(item: Any, column: str) -> torch.Tensor:
    """One image (PIL image or array) → float32 (C, H, W) in [0, 1] with C ∈ {1, 3} (alpha dropped)."""
    from PIL import Image  # late: heavy third-party, only for image decoding

    if isinstance(item, Image.Image):
        if item.mode in ("I", "I;16", "I;16L", "I;16B"):  # 16-bit grey PNGs
            arr = np.asarray(item, dtype=np.float32) / 65535.0
        elif item.mode == "F":
            arr = np.asarray(item, dtype=np.float32)
        else:
            grey = item.mode in ("1", "L", "LA", "La")
            arr = np.asarray(item.convert("L" if grey else "RGB"), dtype=np.float32) / 255.0
    else:
        raw = np.asarray(item)
        scale = 65535.0 if raw.dtype in (np.uint16, np.int32) else 255.0 if raw.dtype.kind in "iu" else 1.0
        arr = raw.astype(np.float32) / scale
        if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
            arr = arr.transpose(1, 2, 0)  # (C, H, W) → (H, W, C)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
            raise DataError(f"data.image_column {column!r}: array of shape {raw.shape} is not an image")
    chw = torch.from_numpy(np.ascontiguousarray(arr))
    chw = chw[None] if chw.ndim == 2 else chw.permute(2, 0, 1)  # (H, W[, C]) → (C, H, W)
    return chw[:3] if chw.shape[0] == 4 else chw


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) → (B, C, size, size), bilinear; antialiased when any side shrinks."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = x.shape[-2] > size or x.shape[-1] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def _decode(ds: Any, image_column: str, label_column: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A split → images (N, C, size, size) float32 in [0, 1] (C = 3 if any image is colour) and labels (N,)."""
    import datasets  # late: heavy third-party, only while building the cache

    if not isinstance(ds.features[image_column], datasets.Image):
        ds = ds.with_format("numpy")
    chunks: list[torch.Tensor] = []
    labels: list[int] = []
    batches = ds.select_columns([image_column, label_column]).iter(batch_size=_DECODE_BATCH)
    for start in itertools.count(0, _DECODE_BATCH):
        try:  # the iterator decodes the image files: PIL raises on truncated or unrecognised ones
            batch = next(batches, None)
            if batch is None:
                break
            items = [_item_to_chw(item, image_column) for item in batch[image_column]]
        except (OSError, ValueError, SyntaxError) as err:
            raise DataError(_undecodable(ds, image_column, start, err)) from None
        channels = max(t.shape[0] for t in items)
        items = [t.expand(channels, -1, -1) for t in items]  # grey → colour when a batch mixes both
        if len({t.shape for t in items}) == 1:
            chunks.append(_resize(torch.stack(items), size))
        else:  # images of different sizes: resize one by one
            chunks.append(torch.cat([_resize(t[None], size) for t in items]))
        labels.extend(int(v) for v in batch[label_column])
    if not chunks:
        return torch.zeros(0, 1, size, size), torch.zeros(0, dtype=torch.int64)
    channels = max(c.shape[1] for c in chunks)
    images = torch.cat([c.expand(-1, channels, -1, -1) for c in chunks])
    return images, torch.tensor(labels, dtype=torch.int64)


def _undecodable(ds: Any, column: str, first: int, err: Exception) -> str:
    """Which image of a failed decode batch is broken (by file name when the source has one)."""
    import datasets  # late: heavy third-party, only after a decode failed
    from PIL import Image  # late: only after a decode failed

    if isinstance(ds.features[column], datasets.Image):
        raw = ds.cast_column(column, datasets.Image(decode=False))
        for row in range(first, min(first + _DECODE_BATCH, len(raw))):
            item = raw[row][column]
            try:
                with Image.open(item["path"] if item.get("bytes") is None else io.BytesIO(item["bytes"])) as im:
                    im.load()
            except (OSError, ValueError, SyntaxError) as bad:
                return f"data.image_column {column!r}: image {item.get('path') or f'#{row}'} cannot be decoded ({bad})"
    return f"data.image_column {column!r}: an image of rows {first}..{first + _DECODE_BATCH - 1} cannot be " \
        f"decoded ({type(err).__name__}: {err})"


def _set_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if channels == 3:  # grey → colour: repeat
        return x.expand(-1, 3, -1, -1).contiguous()
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # ITU-R 601, as PIL's convert("L")
    return (x * luma).sum(dim=1, keepdim=True)


def _build(data_spec: Any, hf_build_dir: Path) -> dict[str, Any]:
    """Load, split, decode and normalise ``data_spec``: the payload of a cache file."""
    size = int(data_spec.image_size)
    if size < 1:
        raise DataError(f"data.image_size is {size}; expected a positive integer")
    dd = load_source(data_spec, build_cache_dir=hf_build_dir)
    splits, class_names = select_splits(dd, data_spec)
    decoded = {s: _decode(ds, data_spec.image_column, data_spec.label_column, size) for s, ds in splits.items()}
    if data_spec.grayscale is None:  # keep the source's channels (colour if any split has colour)
        channels = max(x.shape[1] for x, _ in decoded.values())
    else:
        channels = 1 if data_spec.grayscale else 3
    train = _set_channels(decoded["train"][0], channels)
    mean = train.mean(dim=(0, 2, 3))  # (C,): statistics of the training split only
    std = train.std(dim=(0, 2, 3), correction=0).clamp_min(1e-6)
    payload: dict[str, Any] = {"version": CACHE_VERSION, "class_names": class_names, "mean": mean, "std": std}
    for split in SPLITS:
        x, y = decoded.pop(split)  # drop the unnormalised copy as we go: peak memory stays near 2× the data
        x = train if split == "train" else _set_channels(x, channels)
        payload[f"{split}_x"] = x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
        payload[f"{split}_y"] = y
    return payload


def prepare_data_once(data_spec: Any, cache_dir: str | os.PathLike[str]) -> Path:
    """Build the prepared tensors for ``data_spec`` unless cached; return the cache file.

    Call it once before starting worker processes; a second call (or a worker) finds the file and returns at
    once. Local imagefolder/parquet sources are converted by ``datasets`` under ``<cache_dir>/hf``.
    """
    target = cache_file(data_spec, cache_dir)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = _build(data_spec, target.parent / "hf")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)  # atomic: readers see the old state or the whole file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# -------------------------------------------------------------------------------------------- datamodule
class ImageDataModule(pl.LightningDataModule):
    """Train/val/test loaders over the prepared tensors of one ``DataSpec`` (see :func:`build_datamodule`).

    After ``setup()``: ``num_classes``, ``in_channels``, ``image_size``, ``class_names``, ``mean``, ``std``,
    ``num_train``/``num_val``/``num_test``, ``example_batch(n)`` and ``dataset_info()``.
    """

    def __init__(
        self, data_spec: Any, *, batch_size: int, seed: int, cache_dir: str | os.PathLike[str], num_workers: int
    ) -> None:
        super().__init__()
        self.data_spec = data_spec
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.cache_dir = Path(cache_dir)
        self._data: dict[str, Any] | None = None

    def prepare_data(self) -> None:  # Lightning calls this once per node, before setup
        prepare_data_once(self.data_spec, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self._data is None:  # prepare_data_once is a no-op when the CLI already built the cache
            path = prepare_data_once(self.data_spec, self.cache_dir)
            self._data = torch.load(path, weights_only=True)

    def _get(self, key: str) -> Any:
        if self._data is None:
            raise RuntimeError("ImageDataModule: call setup() before reading data properties or loaders")
        return self._data[key]

    @property
    def class_names(self) -> list[str]:
        return list(self._get("class_names"))

    @property
    def num_classes(self) -> int:
        return len(self._get("class_names"))

    @property
    def in_channels(self) -> int:
        return int(self._get("train_x").shape[1])

    @property
    def image_size(self) -> int:
        return int(self._get("train_x").shape[-1])

    @property
    def mean(self) -> list[float]:
        return self._get("mean").tolist()

    @property
    def std(self) -> list[float]:
        return self._get("std").tolist()

    @property
    def num_train(self) -> int:
        return len(self._get("train_y"))

    @property
    def num_val(self) -> int:
        return len(self._get("val_y"))

    @property
    def num_test(self) -> int:
        return len(self._get("test_y"))

    def example_batch(self, n: int = 2) -> torch.Tensor:
        """The first ``n`` normalised training images, (n, C, S, S) float32, without augmentation."""
        if n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return self._get("train_x")[:n].clone()

    def dataset_info(self) -> dict[str, Any]:
        """Flat facts about the data, for logging as run parameters."""
        spec = self.data_spec
        name = {"hf": spec.name, "local": os.fspath(spec.path) if spec.path is not None else None}
        return {
            "source": spec.source,
            "name": name.get(spec.source, spec.source),
            "num_train": self.num_train,
            "num_val": self.num_val,
            "num_test": self.num_test,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "channels": self.in_channels,
        }

    def _loader(self, split: str, *, train: bool) -> DataLoader:
        dataset = TensorDataset(self._get(f"{split}_x"), self._get(f"{split}_y"))
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": torch.cuda.is_available(),
            "drop_last": False,
        }
        if not train:
            return DataLoader(dataset, shuffle=False, **options)
        augment = getattr(self.data_spec, "augment", None)
        padding = int(getattr(augment, "random_crop_padding", 0) or 0)
        flip = bool(getattr(augment, "horizontal_flip", False))
        collate = None
        if padding > 0 or flip:
            fill = -self._get("mean") / self._get("std")  # normalised black
            collate = AugmentCollate(padding, flip, fill, seed=self.seed + 1)
        shuffle_gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(dataset, shuffle=True, generator=shuffle_gen, collate_fn=collate, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)


def build_datamodule(
    data_spec: Any,
    *,
    batch_size: int,
    seed: int,
    cache_dir: str | os.PathLike[str],
    num_workers: int | None = None,
) -> ImageDataModule:
    """An :class:`ImageDataModule` for ``data_spec`` (``num_workers`` None: the spec's ``num_workers``)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    workers = data_spec.num_workers if num_workers is None else num_workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {workers!r}")
    return ImageDataModule(data_spec, batch_size=batch_size, seed=seed, cache_dir=cache_dir, num_workers=workers)
