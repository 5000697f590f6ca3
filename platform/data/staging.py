"""Checking a data source before anything is created: build the prepared tensors in a temporary folder, then
move them into the data cache once the study's folders exist (:func:`stage_data`, :func:`install_staged`).

A study must not leave a half-made runs folder behind when its data is broken (a corrupt image, one class, a
Hub dataset missing offline), so the source is loaded, decoded and checked outside the runs folder first.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .datamodule import _build, cache_file


@dataclass(frozen=True)
class StagedData:
    """The prepared tensors of one ``DataSpec``: already in the cache (``staged`` None) or in a temporary file."""

    target: Path  # the cache file
    staged: Path | None  # a temporary file to move to ``target`` (None: the cache already has it)
    num_train: int


def stage_data(data_spec: Any, cache_dir: str | os.PathLike[str]) -> StagedData:
    """Load and check ``data_spec``'s source without writing under ``cache_dir``; raises ``DataError``."""
    target = cache_file(data_spec, cache_dir)
    if target.is_file():
        payload = torch.load(target, weights_only=True, mmap=True)
        return StagedData(target, None, int(payload["train_y"].shape[0]))
    scratch = Path(tempfile.mkdtemp(prefix="sasa-data-"))
    try:
        payload = _build(data_spec, scratch / "hf")
        staged = scratch / target.name
        torch.save(payload, staged)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(scratch / "hf", ignore_errors=True)
    return StagedData(target, staged, int(payload["train_y"].shape[0]))


def install_staged(data: StagedData) -> Path:
    """Move staged tensors into the data cache (creating it); returns the cache file."""
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
