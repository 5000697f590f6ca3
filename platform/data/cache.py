"""Where prepared data lives and which path it takes: the cache key of a ``DataSpec`` and the ``auto`` mode choice.

``<key>`` is a sha256 of the data fields that change the prepared data (not ``mode``, ``augment``,
``eval_resize`` or the worker count), plus, for local sources, every file's name, size and mtime, so edited data
rebuilds. The in-memory cache is ``<cache_dir>/<key>.pt``, the streaming index ``<cache_dir>/<key>.stream.pt``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .memory import CACHE_VERSION
from .sources import DataError

__all__ = ["MEMORY_SHARE", "MODES", "available_memory", "cache_file", "choose_mode", "stream_file"]

MODES = ("auto", "memory", "stream")
MEMORY_SHARE = 0.25  # auto: in memory when the uint8 images take at most this share of the available RAM
_KEY_FIELDS = (
    "source", "name", "config", "path", "format", "image_column", "label_column", "train_split", "val_split",
    "test_split", "val_fraction", "test_fraction", "split_seed", "image_size", "grayscale", "max_train_samples",
)  # fmt: skip


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


def _digest(data_spec: Any) -> str:
    key: dict[str, Any] = {f: getattr(data_spec, f) for f in _KEY_FIELDS}
    key["version"] = CACHE_VERSION
    if key["source"] == "local" and key["path"] is not None:
        key["path"] = os.path.abspath(os.fspath(key["path"]))
        key["files"] = _local_fingerprint(key["path"])
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_file(data_spec: Any, cache_dir: str | os.PathLike[str]) -> Path:
    """Where the in-memory (uint8) cache for ``data_spec`` lives: ``<cache_dir>/<sha256 of the data fields>.pt``."""
    return Path(cache_dir) / f"{_digest(data_spec)}.pt"


def stream_file(data_spec: Any, cache_dir: str | os.PathLike[str]) -> Path:
    """Where the streaming index for ``data_spec`` lives: ``<cache_dir>/<same key>.stream.pt``."""
    return Path(cache_dir) / f"{_digest(data_spec)}.stream.pt"


# ------------------------------------------------------------------------------------------ choosing a mode
def available_memory() -> int:
    """Bytes of RAM available now (``MemAvailable`` of /proc/meminfo; free pages where that is missing)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def choose_mode(data_spec: Any, num_images: int, *, available: int | None = None) -> str:
    """``memory`` if ``num_images`` decoded to uint8 at ``image_size`` fit in :data:`MEMORY_SHARE` of the
    available RAM (each trial process holds its own copy), else ``stream``; an explicit mode is kept."""
    mode = getattr(data_spec, "mode", "auto")
    if mode not in MODES:
        raise DataError(f"data.mode is {mode!r}; expected one of {list(MODES)}")
    if mode != "auto":
        return mode
    channels = getattr(data_spec, "expected_channels", 3)
    decoded = num_images * channels * int(data_spec.image_size) ** 2
    budget = MEMORY_SHARE * (available_memory() if available is None else available)
    return "memory" if decoded <= budget else "stream"
