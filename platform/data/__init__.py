"""The data layer: a ``DataSpec`` → a source (:mod:`.sources`) → a uint8 cache (:mod:`.memory`) or a streaming
index (:mod:`.streaming`) → a LightningDataModule (:mod:`.datamodule`) whose batches are normalised and augmented
(:mod:`.transforms`) on the training device."""

from .datamodule import (
    MODES,
    ImageDataModule,
    available_memory,
    build_datamodule,
    cache_file,
    choose_mode,
    prepare_data_once,
    stream_file,
)
from .sources import DataError, load_source, select_splits
from .transforms import EvalTransform, TrainTransform, decode_image, normalise, pad_crop_flip

__all__ = ["MODES", "DataError", "EvalTransform", "ImageDataModule", "TrainTransform", "available_memory",
           "build_datamodule", "cache_file", "choose_mode", "decode_image", "load_source", "normalise",
           "pad_crop_flip", "prepare_data_once", "select_splits", "stream_file"]
