"""The spec's sections, one pydantic model per concern: data, model, train, objective, pruner, execution.

Models are pydantic v2 (:class:`.base.Spec`), strict (``extra="forbid"``, no string-to-number coercion; YAML ints
are accepted for floats), and frozen.  The ``search`` section is in :mod:`.parameters`; the whole study in
:mod:`.study_spec`.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, ValidationInfo, field_validator, model_validator
from torch import nn

import sasa
from sasa.kernels import BACKENDS
from sasa.models.factory import LAYER_GROUPS, MODELS, POS_ENCODINGS, PRESETS, STEMS
from sasa.models.registry import is_import_name, list_models, resolve_builder

from .base import MAX_SEED, Spec, is_stored_spec, worker_count
from .errors import did_you_mean, raise_problems, show
from .metrics import DEFAULT_METRIC, LOGGED_METRICS, LOSS, VALIDATION_METRICS

# The range of the bounded metrics (accuracies are fractions); losses have no upper bound.
METRIC_RANGES: dict[str, tuple[float, float]] = {m: (0.0, 1.0) for m in LOGGED_METRICS if not m.endswith(LOSS)}
# The study's sections, in order (``search`` is :class:`.parameters.SearchSpec`; the study: :mod:`.study_spec`).
SECTIONS: tuple[str, ...] = ("data", "model", "train", "search", "objective", "pruner", "execution")


MAX_MAGNITUDE = 1e12  # search-range ends (``low``/``high``): finite, and far from float overflow


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number; got {show(value)}")
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"expected a finite number of magnitude ≤ {MAX_MAGNITUDE:g}; got {show(value)}")
    return value


def _batch_limit(value: Any) -> int | float | None:
    valid = "a fraction in (0, 1], a batch count ≥ 1, or null"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected {valid}; got {show(value)}")
    if (isinstance(value, int) and value < 1) or (isinstance(value, float) and not 0.0 < value <= 1.0):
        raise ValueError(f"{value!r} is out of range; use {valid}")
    return value


def _devices(value: Any) -> str | list[int]:
    if value == "auto":
        return "auto"
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected 'auto' or a non-empty list of device indices (e.g. [0, 1]); got {show(value)}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise ValueError(f"device indices must be integers ≥ 0; got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"device indices must be distinct; got {value!r}")
    return value


def one_of(vocabulary: Callable[[], Collection[str]], *, extra: str = "") -> PlainValidator:
    """A validator accepting null or a string of ``vocabulary()`` — read at validation time, so the spec always
    agrees with ``sasa``'s own constants — with pydantic's Literal message (did-you-mean, the valid values)."""

    return PlainValidator(lambda value: value if value is None else _choice(value, list(vocabulary()), extra))


def _choice(value: Any, valid: list[str], extra: str = "") -> str:
    if isinstance(value, str) and value in valid:
        return value
    raise ValueError(f"{show(value)} is not valid{did_you_mean(value, valid)}; choose one of {', '.join(valid)}{extra}")


def _model_name(value: Any) -> str:
    """A registered model name, or a ``package.module:function`` builder that imports (checked here, so a bad
    one stops the study before anything is created)."""
    if is_import_name(value):
        if is_stored_spec():  # checked when the study began; its module need not be importable here
            return value
        try:
            resolve_builder(value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("create_model: ")) from None
        return value
    return _choice(value, list_models(), ", or your own builder 'package.module:function' (docs/backbones.md)")


Number = Annotated[int | float, PlainValidator(_number)]
Workers = Annotated[int | Literal["auto"], PlainValidator(worker_count)]
BatchLimit = Annotated[int | float | None, PlainValidator(_batch_limit)]
Devices = Annotated[Literal["auto"] | list[int], PlainValidator(_devices)]


# --- data ------------------------------------------------------------------------------------------------


class AugmentSpec(Spec):
    """Training augmentation: memory mode pads and crops on the device; stream mode uses RandomResizedCrop."""

    random_crop_padding: int = Field(0, ge=0, le=1024)  # memory mode: random crop from a black border of this width
    horizontal_flip: bool = False  # both modes
    crop_scale: list[float] = Field(default_factory=lambda: [0.08, 1.0])  # stream: RandomResizedCrop area range

    @field_validator("crop_scale")
    @classmethod
    def _scale(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or not 0.0 < value[0] <= value[1] <= 1.0:
            raise ValueError(f"expected [low, high] with 0 < low ≤ high ≤ 1 (area fractions); got {value!r}")
        return value


class DataSpec(Spec):
    """Where images come from and how they are split and shaped (consumed by ``platform.data``)."""

    source: Literal["digits", "hf", "local"] = "digits"
    name: str | None = Field(None, validate_default=True)
    config: str | None = None
    path: str | None = Field(None, validate_default=True)
    format: Literal["auto", "imagefolder", "parquet", "disk"] = "auto"
    image_column: str = "image"
    label_column: str = "label"
    train_split: str = "train"
    val_split: str | None = None
    test_split: str | None = None
    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    split_seed: int = Field(0, ge=0, le=MAX_SEED)
    image_size: int = Field(16, ge=4, le=1024)
    grayscale: bool | None = None
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    max_train_samples: int | None = Field(None, ge=1, le=10**9)
    # memory: decode once to a uint8 cache; stream: decode in loader workers; auto: memory if it fits in RAM
    mode: Literal["auto", "memory", "stream"] = "auto"
    eval_resize: int | None = Field(None, ge=4, le=4096)  # stream: shorter side before the centre crop (None: S/0.875)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "num_workers" in data:
            raise ValueError("data.num_workers moved to execution.data_workers (DataLoader worker processes)")
        return data

    @model_validator(mode="after")
    def _eval_resize(self) -> DataSpec:
        if self.eval_resize is not None and self.eval_resize < self.image_size:
            raise_problems([("eval_resize", f"{self.eval_resize} is below image_size ({self.image_size}); the "
                                            "centre crop needs eval_resize ≥ image_size")])
        return self

    @field_validator("name")
    @classmethod
    def _hf_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") == "hf" and not value:
            raise ValueError("required when source is hf; give a Hugging Face hub dataset name")
        return value

    @field_validator("path")
    @classmethod
    def _local_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") != "local":
            return value
        if not value:
            raise ValueError("required when source is local; give a directory or a parquet file/glob")
        if not (glob.glob(value) if glob.has_magic(value) else Path(value).exists()):
            raise ValueError(f"{value} does not exist (relative paths start at the working directory)")
        return value

    @property
    def in_channels(self) -> int | None:
        """1 or 3 when ``grayscale`` forces it; None when the source's channels are kept."""
        return None if self.grayscale is None else (1 if self.grayscale else 3)

    @property
    def expected_channels(self) -> int:
        """The channels the models will see, without loading data: ``grayscale`` if set, 1 for digits, else 3."""
        return self.in_channels or (1 if self.source == "digits" else 3)


# --- model and training ----------------------------------------------------------------------------------


class ModelSpec(Spec):
    """Options for ``sasa.create_model(name, num_classes, **options)``.

    ``name`` is a registered model (``sasa.list_models()``: the ResNets) or a researcher's own builder,
    ``package.module:function`` (docs/backbones.md), which gets exactly the options set here. Null (the default
    of every option but ``name``) means the builder's own default, so each option has exactly one default
    (``sasa.models.factory.DEFAULTS`` for the ResNets) and one range check (the builder's, reported at the
    option's YAML path by the spec's build check); only what the builder cannot see is checked here (odd windows
    even in conv-only models, layer groups). The vocabularies (names, presets, stems, ``pos_enc``, backends, layer
    groups) are ``sasa``'s constants, read when a spec is validated.
    """

    name: Annotated[str, PlainValidator(_model_name)] = "resnet26"
    backbone: Annotated[str | None, one_of(lambda: PRESETS)] = None
    stem: Annotated[str | None, one_of(lambda: STEMS)] = None
    attention_groups: list[int] | None = None
    kernel_size: int | None = Field(None, le=255)
    heads: int | None = Field(None, ge=1, le=1024)
    pos_enc: Annotated[str | None, one_of(lambda: POS_ENCODINGS)] = None
    backend: Annotated[str | None, one_of(lambda: BACKENDS)] = None  # SASA2d kernel; null: the factory's ("auto")
    stem_mixtures: int | None = Field(None, ge=1, le=64)
    width: float | None = Field(None, gt=0.0, le=16.0)
    small_input: bool | None = None

    def options(self) -> dict[str, Any]:
        """``create_model`` keyword options: the set ones (null options are left to the factory)."""
        return {k: v for k, v in self.model_dump().items() if v is not None and k != "name"}

    def build(self, *, num_classes: int, in_channels: int) -> nn.Module:
        """The network for these options — the one place the platform calls ``sasa.create_model``."""
        return sasa.create_model(self.name, num_classes, in_channels=in_channels, **self.options())

    @field_validator("kernel_size")
    @classmethod
    def _odd_window(cls, value: int | None) -> int | None:
        if value is None:
            return value
        if value < 1:
            raise ValueError(f"window size {value} is not positive; SASA windows must be odd (e.g. 3, 5, 7)")
        if value % 2 == 0:
            raise ValueError(f"window size {value} is even; SASA windows must be odd (e.g. 3, 5, 7)")
        return value

    @field_validator("attention_groups")
    @classmethod
    def _groups(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if info.data.get("name") not in MODELS:  # a user's builder (or a bad name): the builder judges its groups
            return value
        valid = ", ".join(map(str, LAYER_GROUPS))
        for group in value or []:
            if group not in LAYER_GROUPS:
                raise ValueError(f"layer group {group} does not exist; choose among {valid}")
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"{value} lists a layer group twice; give each of {valid} at most once")
        return value


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def compile_mode(value: Any) -> Any:
    """``train.compile`` as stored: ``true`` (specs written before the modes existed) means ``"default"``."""
    return "default" if value is True else value


class TrainSpec(Spec):
    """Optimisation: Nesterov SGD or AdamW, linear warm-up then per-step cosine decay to 0 (the paper's)."""

    epochs: int = Field(10, ge=1, le=100_000)
    max_steps: int | None = Field(None, le=10**9)
    batch_size: int = Field(64, ge=1, le=65_536)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0.0, le=1.0e6)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1.0e-4, ge=0.0, le=100.0)
    warmup_epochs: float = Field(1.0, ge=0.0, le=100_000)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "64-true"] = "32-true"
    # torch.compile the network with this mode (opt-in; the first steps pay the compilation); true means "default"
    compile: Literal[False, "default", "reduce-overhead", "max-autotune"] = False
    channels_last: bool = False  # network and image batches in channels_last memory format
    gradient_clip_val: float | None = Field(None, gt=0.0, le=1.0e6)
    deterministic: bool = False
    limit_train_batches: BatchLimit = None
    limit_val_batches: BatchLimit = None

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_mode(cls, value: Any) -> Any:
        return compile_mode(value)

    @field_validator("max_steps", mode="before")
    @classmethod
    def _max_steps(cls, value: Any) -> Any:
        if value == -1 and not isinstance(value, bool):
            return None  # Lightning's "off"
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"must be ≥ 1, or -1/null for off; got {value}")
        return value

    @model_validator(mode="after")
    def _warmup(self) -> TrainSpec:
        if self.max_steps is None and self.warmup_epochs > self.epochs:
            raise_problems([("warmup_epochs", f"{self.warmup_epochs:g} exceeds epochs ({self.epochs}); use ≤ epochs")])
        return self


# --- objective, pruner, execution ------------------------------------------------------------------------


class ObjectiveSpec(Spec):
    """The validation metric to optimise and, for nsga2, a second objective (always minimised)."""

    metric: str = DEFAULT_METRIC
    direction: Literal["maximize", "minimize"]
    second: Literal["params", "flops", "latency"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_direction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("direction") is None:
            metric = str(data.get("metric", DEFAULT_METRIC))
            return {**data, "direction": "minimize" if LOSS in metric else "maximize"}
        return data

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        valid = ", ".join(VALIDATION_METRICS)
        if value in LOGGED_METRICS and value not in VALIDATION_METRICS:
            raise ValueError(f"'{value}' is not a validation metric (pruning and selection use validation); "
                             f"valid: {valid}")
        if value not in LOGGED_METRICS:
            raise ValueError(f"'{value}' is never logged; valid: {valid}")
        return value


class PrunerSpec(Spec):
    type: Literal["none", "median", "hyperband", "successive_halving"] = "none"
    warmup_epochs: int = Field(1, ge=0, le=100_000)
    startup_trials: int = Field(5, ge=0, le=1_000_000)  # median: never-pruned trials (n_startup_trials)


class ExecutionSpec(Spec):
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: Devices = "auto"
    workers: Workers = 1  # worker processes, or "auto" (one per GPU; on a CPU one per core: study/devices.py)
    devices_per_trial: int = Field(1, ge=1, le=1024)
    data_workers: int = Field(0, ge=0, le=256)  # DataLoader worker processes per trial (decode + augmentation)
    # Seconds a store may stay unreachable before the study stops cleanly (resumable); --outage-budget on the CLI
    outage_budget: float = Field(300.0, ge=1, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _enough_devices(self) -> ExecutionSpec:
        workers = self.workers if isinstance(self.workers, int) else 1  # "auto" fits any device list
        if isinstance(self.devices, list) and workers * self.devices_per_trial > len(self.devices):
            raise_problems([("workers", f"{self.workers} workers × {self.devices_per_trial} devices per trial need "
                                f"{self.workers * self.devices_per_trial} devices; devices lists "
                                f"{len(self.devices)}")])
        return self


