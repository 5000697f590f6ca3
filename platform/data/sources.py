"""Image-classification sources for the study runner, loaded into a validated ``datasets.DatasetDict``.

Three sources (``DataSpec.source``):

- ``digits``: scikit-learn's bundled ``load_digits()`` (the UCI optical-digits set: 1797 images of 8×8 pixels
  with 17 grey levels 0–16, 10 classes). It ships inside scikit-learn, so it is real data that needs no network.
- ``hf``: ``datasets.load_dataset(name, config)`` from the Hugging Face Hub or its local cache. The Hub is
  probed first with a short timeout, so an unreachable Hub fails in seconds instead of after the library's
  retries; with ``HF_HUB_OFFLINE=1`` (set before Python starts) only the local cache is used.
- ``local``: an imagefolder directory (one sub-folder per class), parquet file(s), or a ``save_to_disk``
  directory; ``format: auto`` tells them apart.

Every failure a user can cause (a missing path, an unreachable Hub, a missing column, labels that are not class
ids) raises :class:`DataError` naming the ``data.*`` field at fault.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import datasets
import numpy as np

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
__all__ = ["DataError", "check_columns", "detect_format", "load_source", "select_splits"]

FORMATS = ("auto", "imagefolder", "parquet", "disk")
SOURCES = ("digits", "hf", "local")
_HUB_PROBE_TIMEOUT_S = 5.0
_OFFLINE_HINT = "for offline use, save the data with save_to_disk/to_parquet and set `data.source: local`"


class DataError(Exception):
    """The data section of a study cannot be loaded as asked (the message names the ``data.*`` field)."""


DataError.__module__ = __package__  # raised and documented as <package>.data.DataError


def load_source(spec: Any, *, build_cache_dir: Path | None = None) -> datasets.DatasetDict:
    """Load ``spec.source`` into a ``DatasetDict`` (split name → Dataset), without any splitting or checks.

    ``build_cache_dir`` receives the arrow files ``datasets`` builds from local imagefolder/parquet data (None:
    the library's default cache); Hub datasets always use the library's default cache so downloads are shared.
    """
    source = spec.source
    if source == "digits":
        return _load_digits()
    if source == "hf":
        return _load_hf(spec.name, spec.config)
    if source == "local":
        return _load_local(spec.path, spec.format, build_cache_dir)
    raise DataError(f"data.source is {source!r}; expected one of {list(SOURCES)}")


def planned_examples(spec: Any, *, limit_val_batches: int | float | None) -> dict[str, int] | None:
    """Examples per split known before the data is prepared (the dry run's N): the ``digits`` source, whose
    validation and test splits are carved from its 1797 images by the fractions (:func:`select_splits`' rule).
    None for the other sources (their sizes are known once the data is prepared and the trials record them) and
    with ``train.limit_val_batches`` (``limit_val_batches``: validation then counts only the batches Lightning
    evaluates, which depend on the batch size and the ranks; the trials record that N)."""
    if spec.source != "digits" or spec.val_split is not None or spec.test_split is not None:
        return None
    if limit_val_batches is not None:
        return None
    from sklearn.datasets import load_digits  # late: heavy third-party, only for digits

    total = len(load_digits().target)
    return {split: max(1, round(getattr(spec, f"{split}_fraction") * total)) for split in ("val", "test")}


def _load_digits() -> datasets.DatasetDict:
    from PIL import Image  # late: heavy third-party, only for the digits source
    from sklearn.datasets import load_digits  # late: heavy third-party, only for digits

    bunch = load_digits()
    # 0–16 grey levels → 8-bit grey images (16 ↦ 255), so digits take the same path as every image dataset.
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(c) for c in range(10)])}
    )
    table = {"image": [Image.fromarray(p) for p in pixels], "label": bunch.target.tolist()}
    return datasets.DatasetDict(train=datasets.Dataset.from_dict(table, features=features))


def _hub_unreachable_reason() -> str | None:
    """None if the Hub answers within the probe timeout, else why it does not (offline mode included)."""
    if datasets.config.HF_HUB_OFFLINE:
        return None  # the library answers from its cache or raises at once
    from huggingface_hub import constants  # late: only to probe the Hub
    from huggingface_hub.utils import get_session  # late: as above

    try:
        get_session().head(constants.ENDPOINT, timeout=_HUB_PROBE_TIMEOUT_S)
    except Exception as err:  # any transport failure: DNS, refused, timeout, proxy
        return f"{type(err).__name__}: {err}"
    return None


def _load_hf(name: str | None, config: str | None) -> datasets.DatasetDict:
    if not name:
        raise DataError("data.name is required when data.source is 'hf' (a Hugging Face dataset name)")
    shown = name if config is None else f"{name} (config {config!r})"
    reason = _hub_unreachable_reason()
    if reason is not None:
        raise DataError(
            f"data.name: could not load Hugging Face dataset {shown!r}: the Hub could not be reached ({reason}). "
            f"If the dataset is already in the local cache, set HF_HUB_OFFLINE=1; {_OFFLINE_HINT}"
        )
    try:
        loaded = datasets.load_dataset(name, config)
    except datasets.exceptions.DatasetNotFoundError as err:
        raise DataError(
            f"data.name: could not load Hugging Face dataset {shown!r}: it does not exist on the Hub or cannot be "
            f"accessed ({err}); check data.name, or {_OFFLINE_HINT}"
        ) from err
    except ConnectionError as err:  # offline mode without a cached copy, or the Hub went away mid-way
        offline = " (offline mode and not in the local cache)" if datasets.config.HF_HUB_OFFLINE else ""
        raise DataError(
            f"data.name: could not load Hugging Face dataset {shown!r}: the Hub could not be reached{offline}, or the "
            f"dataset does not exist ({err}); {_OFFLINE_HINT}"
        ) from err
    except ValueError as err:  # e.g. an unknown config name: the library lists the valid ones
        raise DataError(f"data.name: could not load Hugging Face dataset {shown!r} (check data.config): {err}") from err
    if not isinstance(loaded, datasets.DatasetDict):  # pragma: no cover - load_dataset without split
        loaded = datasets.DatasetDict(train=loaded)
    return loaded


def detect_format(path: str | os.PathLike[str]) -> str:
    """The local format of ``path``: ``disk``, ``parquet`` or ``imagefolder`` (DataError if none fits)."""
    text = os.fspath(path)
    if glob.has_magic(text):
        matches = glob.glob(text, recursive=True)
        if not matches:
            raise DataError(f"data.path {text!r} matches no files")
        if all(m.endswith(".parquet") for m in matches):
            return "parquet"
        raise DataError(f"data.path {text!r} is a glob; globs must match only .parquet files")
    where = Path(text)
    if not where.exists():
        raise DataError(f"data.path {text!r} does not exist")
    if where.is_file():
        if where.suffix == ".parquet":
            return "parquet"
        raise DataError(f"data.path {text!r} is a file but not a .parquet file")
    if (where / "dataset_dict.json").is_file() or (where / "state.json").is_file():
        return "disk"
    files = [p for p in where.rglob("*") if p.is_file()]
    if not files:
        raise DataError(f"data.path {text!r} is an empty folder")
    if any(p.suffix == ".parquet" for p in files):
        return "parquet"
    if any(p.suffix.lower() in IMAGE_SUFFIXES and p.parent != where for p in files):
        return "imagefolder"
    raise DataError(
        f"data.path {text!r} holds neither a save_to_disk dataset (dataset_dict.json/state.json), nor .parquet "
        "files, nor class sub-folders of images; set data.format or fix data.path"
    )


def _load_local(path: Any, fmt: str, build_cache_dir: Path | None) -> datasets.DatasetDict:
    if path is None:
        raise DataError("data.path is required when data.source is 'local'")
    if fmt not in FORMATS:
        raise DataError(f"data.format is {fmt!r}; expected one of {list(FORMATS)}")
    detected = detect_format(path)  # also checks that the path exists
    fmt = detected if fmt == "auto" else fmt
    text = os.fspath(path)
    cache = None if build_cache_dir is None else os.fspath(build_cache_dir)
    try:
        if fmt == "disk":
            loaded = datasets.load_from_disk(text)
        elif fmt == "parquet":
            where = Path(text)
            if where.is_dir():  # split names come from file/folder names (train-*.parquet, test/...)
                loaded = datasets.load_dataset("parquet", data_dir=text, cache_dir=cache)
            else:
                loaded = datasets.load_dataset("parquet", data_files={"train": text}, cache_dir=cache)
        else:
            loaded = datasets.load_dataset("imagefolder", data_dir=text, cache_dir=cache)
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"could not load data.path {text!r} as {fmt}: {type(err).__name__}: {err}") from err
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict(train=loaded)
    return loaded


def _is_image_feature(feature: Any) -> bool:
    return isinstance(feature, datasets.Image | datasets.Array2D | datasets.Array3D | datasets.List)


def _is_label_feature(feature: Any) -> bool:
    if isinstance(feature, datasets.ClassLabel):
        return True
    return isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))


def check_columns(dd: dict[str, datasets.Dataset], image_column: str, label_column: str) -> list[str]:
    """Check the image and label columns of every split in ``dd``; return the class names.

    Labels must be a ``ClassLabel`` (names kept) or non-negative integers (classes ``0 … max``, named by
    their number).
    """
    if not dd:
        raise DataError("the data source holds no splits")
    names: list[str] | None = None
    highest = -1
    for split, ds in dd.items():
        available = list(ds.column_names)
        for field, column in (("data.image_column", image_column), ("data.label_column", label_column)):
            if column not in ds.features:
                hint = " (an imagefolder data.path needs one sub-folder per class, at least 2 classes)" \
                    if field == "data.label_column" else ""
                raise DataError(
                    f"{field} {column!r} is not a column of split {split!r}; available columns: {available}{hint}"
                )
        image_feature, label_feature = ds.features[image_column], ds.features[label_column]
        if not _is_image_feature(image_feature):
            raise DataError(
                f"data.image_column {image_column!r} holds {image_feature}, not images "
                f"(expected an Image feature or nested arrays); available columns: {available}"
            )
        if not _is_label_feature(label_feature):
            raise DataError(
                f"data.label_column {label_column!r} holds {label_feature}; expected integer class ids or a "
                f"ClassLabel; available columns: {available}"
            )
        if isinstance(label_feature, datasets.ClassLabel):
            if names is not None and names != list(label_feature.names):
                raise DataError(f"data.label_column {label_column!r}: class names differ between splits")
            names = list(label_feature.names)
        elif len(ds):
            labels = np.asarray(ds.with_format("numpy")[label_column])
            if labels.min() < 0:
                raise DataError(f"data.label_column {label_column!r} has negative labels in split {split!r}")
            highest = max(highest, int(labels.max()))
    if names is None:
        names = [str(c) for c in range(highest + 1)]
    elif highest >= len(names):
        raise DataError(f"data.label_column {label_column!r}: label {highest} but only {len(names)} class names")
    if len(names) < 2:
        raise DataError(f"data.label_column {label_column!r} has {len(names)} class(es); need at least 2")
    return names


def _stratified_cut(
    idx: np.ndarray, labels: np.ndarray, n_out: int, seed: int, field: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (kept, cut) with ``len(cut) == n_out``, class proportions preserved."""
    from sklearn.model_selection import train_test_split  # late: heavy third-party

    try:
        kept, cut = train_test_split(idx, test_size=n_out, stratify=labels[idx], random_state=seed)
    except ValueError as err:  # a class with one image, or fewer held-out images than classes
        raise DataError(
            f"{field}: cannot carve a stratified split of {n_out} of {len(idx)} training images "
            f"({len(np.unique(labels[idx]))} classes): {err}"
        ) from err
    return np.sort(kept), np.sort(cut)


def select_splits(dd: datasets.DatasetDict, spec: Any) -> tuple[dict[str, datasets.Dataset], list[str]]:
    """Pick train/val/test from ``dd``, check their columns, carve the ones the spec leaves None from train.

    Returns the three splits and the class names. Splits of the source that the spec does not name are
    ignored (and not checked).

    Carving is a stratified split of the training split, seeded by ``spec.split_seed``: test first
    (``test_fraction`` of the training split), then val (``val_fraction`` of it), so both fractions refer to
    the same whole and the same seed always gives the same three disjoint index sets. ``max_train_samples``
    then keeps a seeded random subset of what is left for training.
    """

    def named(field: str, split: str) -> datasets.Dataset:
        if split not in dd:
            raise DataError(f"data.{field} {split!r} is not a split of the source; available splits: {list(dd)}")
        return dd[split]

    train = named("train_split", spec.train_split)
    if len(train) == 0:
        raise DataError(f"data.train_split {spec.train_split!r} is empty")
    chosen = {
        "val": None if spec.val_split is None else named("val_split", spec.val_split),
        "test": None if spec.test_split is None else named("test_split", spec.test_split),
    }
    used = {spec.train_split: train} | {getattr(spec, f"{s}_split"): d for s, d in chosen.items() if d is not None}
    class_names = check_columns(used, spec.image_column, spec.label_column)
    labels = np.asarray(train.with_format("numpy")[spec.label_column])
    keep = np.arange(len(train))
    to_carve = [(s, getattr(spec, f"{s}_fraction")) for s in ("test", "val") if chosen[s] is None]
    for split, fraction in to_carve:
        if not 0.0 < fraction < 1.0:
            raise DataError(f"data.{split}_fraction is {fraction}; expected a number in (0, 1)")
    if sum(f for _, f in to_carve) >= 1.0:
        raise DataError("data.val_fraction + data.test_fraction must be below 1 (nothing left to train on)")
    for split, fraction in to_carve:
        n_out = max(1, round(fraction * len(train)))
        keep, cut = _stratified_cut(keep, labels, n_out, spec.split_seed, f"data.{split}_fraction")
        chosen[split] = train.select(cut)
    limit = spec.max_train_samples
    if limit is not None:
        if limit < 1:
            raise DataError(f"data.max_train_samples is {limit}; expected a positive integer or null")
        if limit < len(keep):
            keep = np.sort(np.random.default_rng(spec.split_seed).permutation(keep)[:limit])
    return {"train": train.select(keep), "val": chosen["val"], "test": chosen["test"]}, class_names
