"""The data layer: a ``DataSpec`` → a source (:mod:`.sources`) → cached normalised tensors → a LightningDataModule
(:mod:`.datamodule`)."""

from .datamodule import ImageDataModule, augment_batch, build_datamodule, cache_file, prepare_data_once
from .sources import DataError, load_source, select_splits

__all__ = ["DataError", "ImageDataModule", "augment_batch", "build_datamodule", "cache_file", "load_source",
           "prepare_data_once", "select_splits"]
