"""Checking a data source before anything is created: build the prepared tensors in a temporary folder, then
move them into the data cache once the study's folders exist (:func:`stage_data`, :func:`install_staged`).

A study must not leave a half-made runs folder behind when its data is broken (a corrupt image, one class, a
Hub dataset missing offline), so the source is loaded, decoded and checked outside the runs folder first.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .cache import cache_file, stream_file
from .datamodule import prepare_data_once


@dataclass(frozen=True)
class StagedData:
    """The prepared data of one ``DataSpec``: already in the cache (``staged`` None), a memory-mode cache file in a
    temporary folder (moved into the cache by :func:`install_staged`), or a checked stream source (``rebuild``:
    its index points at files under the folder it was built in, so it is built again in the cache)."""

    target: Path  # the cache file
    staged: Path | None  # a temporary file to move to ``target`` (None: nothing to move)
    num_train: int | None
    rebuild: Any = None  # the DataSpec to prepare again in the cache (stream mode), else None
    sizes: dict[str, int] = field(default_factory=dict)  # examples per split (train/val/test) when known


def _sizes(payload: dict[str, Any]) -> dict[str, int]:
    """Examples per split of a prepared payload (memory: its label tensors; stream: its row indices)."""
    splits = payload.get("splits")
    if isinstance(splits, dict):
        return {name: int(entry["rows"].shape[0]) for name, entry in splits.items()}
    return {name: int(payload[f"{name}_y"].shape[0]) for name in ("train", "val", "test") if f"{name}_y" in payload}


def _num_train(payload: dict[str, Any]) -> int | None:
    if "train_y" in payload:  # memory mode: the uint8 images and their labels
        return int(payload["train_y"].shape[0])
    splits = payload.get("splits")
    if isinstance(splits, dict) and "train" in splits:  # stream mode: row indices per split
        return int(splits["train"]["rows"].shape[0])
    return None


def stage_data(data_spec: Any, cache_dir: str | os.PathLike[str]) -> StagedData:
    """Load and check ``data_spec``'s source without writing under ``cache_dir``; raises ``DataError``."""
    for existing in (cache_file(data_spec, cache_dir), stream_file(data_spec, cache_dir)):
        if existing.is_file():
            payload = torch.load(existing, weights_only=True, mmap=True)
            return StagedData(existing, None, _num_train(payload), sizes=_sizes(payload))
    scratch = Path(tempfile.mkdtemp(prefix="sasa-data-"))
    try:
        produced = prepare_data_once(data_spec, scratch)
        payload = torch.load(produced, weights_only=True, mmap=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    target = Path(cache_dir) / produced.name
    if "train_y" not in payload:  # stream index: built again in the cache once the study's folders exist
        shutil.rmtree(scratch, ignore_errors=True)
        return StagedData(target, None, _num_train(payload), rebuild=data_spec, sizes=_sizes(payload))
    shutil.rmtree(scratch / "hf", ignore_errors=True)
    return StagedData(target, produced, _num_train(payload), sizes=_sizes(payload))


def install_staged(data: StagedData) -> Path:
    """Move staged tensors into the data cache (creating it); returns the cache file."""
    if data.rebuild is not None:
        return prepare_data_once(data.rebuild, data.target.parent)
    if data.staged is None or not data.staged.exists():
        return data.target
    data.target.parent.mkdir(parents=True, exist_ok=True)
    if data.target.is_file():  # another process got there first
        discard(data)
        return data.target
    tmp = data.target.with_name(f".{data.target.stem}.{os.getpid()}.tmp")
    shutil.move(str(data.staged), str(tmp))
    os.replace(tmp, data.target)  # atomic: readers see no file or the whole file
    discard(data)
    return data.target


def discard(data: StagedData) -> None:
    """Remove the temporary folder of staged tensors (a no-op when nothing was staged)."""
    if data.staged is not None:
        shutil.rmtree(data.staged.parent, ignore_errors=True)
