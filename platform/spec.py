"""Study specification: the validated, frozen description of one study (``studies/*.yaml``).

A study trains the models of Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) over a search space
(the paper's ablations: window size k, heads, positional encoding, stem, which layer groups use attention) and
reports a validation metric per design point and seed.  The YAML has one section per concern: ``data``
(:class:`DataSpec`), ``model`` (:class:`ModelSpec`, passed to ``sasa.create_model``), ``train``
(:class:`TrainSpec`), ``search`` (:class:`SearchSpec`), ``objective``, ``pruner``, ``execution``; plus ``name``,
``description``, ``storage`` and ``tracking``.

Models are pydantic v2, strict (``extra="forbid"``, no string-to-number coercion; YAML ints are accepted for
floats), and frozen.  :func:`load_spec` reads a file, applies ``--set`` overrides and raises
:class:`~platform.errors.SpecError` listing *every* problem as ``<yaml path>: <problem>; <what is valid>``.
"""

from __future__ import annotations

import copy
import glob
import importlib.util
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from platform import search_space
from platform._yaml_paths import (
    Problem,
    ProblemsError,
    apply_overrides,
    format_errors,
    join,
    load_yaml,
    render,
    show,
    yaml_problem,
)
from platform.errors import SpecError

LOGGED_METRICS: tuple[str, ...] = (
    "train/loss", "train/acc", "val/loss", "val/acc", "val/acc_top5", "test/loss", "test/acc", "test/acc_top5",
)
VALIDATION_METRICS: tuple[str, ...] = tuple(sorted(m for m in LOGGED_METRICS if m.startswith("val/")))
SECTIONS: tuple[str, ...] = ("data", "model", "train", "search", "objective", "pruner", "execution")
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number; got {show(value)}")
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


Number = Annotated[int | float, PlainValidator(_number)]
BatchLimit = Annotated[int | float | None, PlainValidator(_batch_limit)]
Devices = Annotated[Literal["auto"] | list[int], PlainValidator(_devices)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise ProblemsError(problems)


# --- data ------------------------------------------------------------------------------------------------


class AugmentSpec(_Spec):
    random_crop_padding: int = Field(0, ge=0)
    horizontal_flip: bool = False


class DataSpec(_Spec):
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
    split_seed: int = 0
    image_size: int = Field(16, ge=4)
    grayscale: bool | None = None
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    num_workers: int = Field(0, ge=0)
    max_train_samples: int | None = Field(None, ge=1)

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


# --- model and training ----------------------------------------------------------------------------------


class ModelSpec(_Spec):
    """Options for ``sasa.create_model(name, num_classes, **options)``; null means the model's default."""

    name: Literal["resnet26", "resnet38", "resnet50"] = "resnet26"
    backbone: Literal["conv", "attention", "full"] | None = None
    stem: Literal["conv", "attention"] | None = None
    attention_groups: list[int] | None = None
    kernel_size: int = 7
    heads: int = Field(8, ge=1)
    pos_enc: Literal["none", "absolute", "relative"] = "relative"
    stem_mixtures: int = Field(4, ge=1)
    width: float = Field(1.0, gt=0.0)
    small_input: bool = True

    @field_validator("kernel_size")
    @classmethod
    def _odd_window(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"window size {value} is not positive; SASA windows must be odd (e.g. 3, 5, 7)")
        if value % 2 == 0:
            raise ValueError(f"window size {value} is even; SASA windows must be odd (e.g. 3, 5, 7)")
        return value

    @field_validator("attention_groups")
    @classmethod
    def _groups(cls, value: list[int] | None) -> list[int] | None:
        for group in value or []:
            if not 1 <= group <= 4:
                raise ValueError(f"layer group {group} does not exist; choose among 1, 2, 3, 4")
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"{value} lists a layer group twice; give each of 1, 2, 3, 4 at most once")
        return value


class TrainSpec(_Spec):
    """Optimisation: Nesterov SGD or AdamW, linear warm-up then per-step cosine decay to 0 (the paper's)."""

    epochs: int = Field(10, ge=1)
    max_steps: int | None = None
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1.0e-4, ge=0.0)
    warmup_epochs: float = Field(1.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "64-true"] = "32-true"
    gradient_clip_val: float | None = Field(None, gt=0.0)
    deterministic: bool = False
    limit_train_batches: BatchLimit = None
    limit_val_batches: BatchLimit = None

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
            _raise([("warmup_epochs", f"{self.warmup_epochs:g} exceeds epochs ({self.epochs}); use ≤ epochs")])
        return self


# --- search ----------------------------------------------------------------------------------------------


def _is_choice_value(value: Any) -> bool:
    scalar = (type(None), bool, int, float, str)
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


class ParameterSpec(_Spec):
    """One search dimension: ``[a, b]`` (categorical shorthand) or a mapping with ``type``."""

    type: Literal["categorical", "int", "float", "log_float"]
    choices: list[Any] | None = None
    low: Number | None = None
    high: Number | None = None
    step: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"type": "categorical", "choices": data}
        if not isinstance(data, dict):
            raise ValueError(f"expected a list of choices or a mapping with 'type' (categorical, int, float, "
                             f"log_float); got {show(data)}")
        if "type" not in data and "choices" in data:
            return {**data, "type": "categorical"}
        if data.get("type") == "int" and data.get("step") is None:
            return {**data, "step": 1}
        if data.get("type") in ("float", "log_float"):  # YAML ints are fine for float ranges
            return {k: float(v) if k in ("low", "high") and type(v) is int else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        problems: list[Problem] = []
        used = {"categorical": ("choices",), "int": ("low", "high", "step"), "float": ("low", "high"),
                "log_float": ("low", "high")}[self.type]
        for key in ("choices", "low", "high", "step"):
            if key not in used and getattr(self, key) is not None:
                problems.append((key, f"not used by type {self.type}; it takes {', '.join(used)}"))
        problems += [(key, f"required for type {self.type}") for key in used if getattr(self, key) is None]
        if problems:
            _raise(problems)
        if self.type == "categorical":
            problems += _choice_problems(self.choices or [])
        else:
            if self.type == "int":
                problems += [(k, f"type int needs an integer; got {show(getattr(self, k))}")
                             for k in ("low", "high") if not isinstance(getattr(self, k), int)]
                if (self.step or 0) < 1:
                    problems.append(("step", f"must be ≥ 1; got {self.step}"))
            if self.type == "log_float" and self.low is not None and self.low <= 0:
                problems.append(("low", f"must be > 0 for log_float; got {self.low}"))
            if self.low is not None and self.high is not None and self.low > self.high:
                problems.append(("high", f"{self.high} is below low ({self.low}); use high ≥ low"))
        _raise(problems)
        return self


def _choice_problems(choices: list[Any]) -> Iterator[Problem]:
    if not choices:
        yield "choices", "is empty; give at least one choice"
    seen: dict[str, int] = {}
    for i, value in enumerate(choices):
        if not _is_choice_value(value):
            yield join("choices", i), f"expected a number, string, true/false, null or a list of them; got " \
                                      f"{show(value)}"
            continue
        label = f"{type(value).__name__}:{search_space.encode(value)!r}"
        if label in seen:
            yield join("choices", i), f"duplicates choices[{seen[label]}] ({show(value)}); choices must differ"
        seen.setdefault(label, i)


class SearchSpec(_Spec):
    """What is searched and how: design (sampler), parameters, seeds and budget."""

    design: Literal["grid", "tpe", "random", "cmaes", "nsga2"] = "grid"
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0])
    n_trials: int | None = Field(None, ge=1)
    timeout: float | None = Field(None, gt=0.0)
    reference: dict[str, Any] | None = None
    points: list[dict[str, Any]] | None = None  # grid only: these design points instead of the full product

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("is empty; give at least one seed, e.g. [0]")
        duplicates = sorted({s for s in value if value.count(s) > 1})
        if duplicates:
            raise ValueError(f"seed {duplicates[0]} is listed twice; seeds must be distinct")
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, ParameterSpec], info: ValidationInfo) -> dict[str, ParameterSpec]:
        problems: list[Problem] = []
        targets: dict[str, str] = {}
        for key, param in value.items():
            target, problem = search_space.target(key, {"model": ModelSpec, "train": TrainSpec})
            if problem is not None:
                problems.append((key, problem))
                continue
            if target in targets:
                problems.append((key, f"sets {target}, already set by '{targets[target]}'; keep one of them"))
            targets.setdefault(target, key)
            problems += search_space.value_problems(key, target, param, {"model": ModelSpec, "train": TrainSpec})
            if info.data.get("design") == "grid" and search_space.count_levels(param) is None:
                problems.append((key, f"a {param.type} range cannot be gridded; grid needs discrete levels: "
                                      "{type: categorical, choices: [...]} or {type: int, low, high, step}"))
        _raise(problems)
        return value

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        parameters: dict[str, ParameterSpec] | None = info.data.get("parameters")
        if parameters is None:  # the parameters themselves are invalid
            return value
        problems: list[Problem] = []
        for key, level in (value or {}).items():
            param = parameters.get(key)
            if param is None:
                valid = ", ".join(parameters) or "none defined"
                problems.append((key, f"not a search parameter; reference levels are for search.parameters "
                                      f"({valid})"))
                continue
            if param.type == "categorical" and not any(_same(level, v) for v in param.choices or []):
                shown = ", ".join(show(v) for v in param.choices or [])
                problems.append((key, f"{show(level)} is not a level of {key}; choose one of {shown}"))
            elif param.type == "int" and not (isinstance(level, int) and not isinstance(level, bool)
                                              and param.low <= level <= param.high
                                              and (level - param.low) % (param.step or 1) == 0):
                problems.append((key, f"{show(level)} is not a level of {key}; choose an integer in "
                                      f"{param.low}..{param.high} (step {param.step})"))
            elif param.type in ("float", "log_float") and not (_is_number(level) and param.low <= level <= param.high):
                problems.append((key, f"{show(level)} is outside {key}'s range; use a number in "
                                      f"[{param.low}, {param.high}]"))
        _raise(problems)
        return value

    @field_validator("points")
    @classmethod
    def _points(cls, value: list[dict[str, Any]] | None, info: ValidationInfo) -> list[dict[str, Any]] | None:
        parameters: dict[str, ParameterSpec] | None = info.data.get("parameters")
        if value is None or parameters is None:
            return value
        problems: list[Problem] = []
        if info.data.get("design") != "grid":
            problems.append(("", "explicit design points need design: grid"))
        if not value:
            problems.append(("", "is empty; list design points or remove points to use the full grid"))
        names = list(parameters)
        for index, point in enumerate(value):
            if not isinstance(point, dict) or sorted(point) != sorted(names):
                got = sorted(point) if isinstance(point, dict) else point
                problems.append((f"[{index}]", f"must set exactly the search parameters {names}; got {got}"))
                continue
            for key, level in point.items():
                if not any(_same(level, v) for v in search_space.levels(parameters[key]) or []):
                    problems.append((f"[{index}].{key}", f"{show(level)} is not a level of {key}"))
        _raise(problems)
        return value

    @model_validator(mode="after")
    def _budget(self) -> SearchSpec:
        problems: list[Problem] = []
        if self.design == "grid" and self.n_trials is not None:
            problems.append(("n_trials", "not used by the grid design (it runs every design point once per "
                                         "seed); remove it, or choose tpe, random, cmaes or nsga2"))
        if self.design != "grid" and self.n_trials is None and self.timeout is None:
            problems.append(("n_trials", f"required for design {self.design} unless timeout is set; "
                                         "e.g. n_trials: 20"))
        size = math.prod(search_space.count_levels(p) or 1 for p in self.parameters.values())
        if self.design == "grid" and size > search_space.MAX_GRID_POINTS:
            problems.append(("parameters", f"the grid has {size} design points; use at most "
                                           f"{search_space.MAX_GRID_POINTS} or a sampling design (tpe, random)"))
        if self.design != "grid" and not self.parameters:
            problems.append(("parameters", f"design {self.design} needs at least one parameter to search"))
        if self.design == "cmaes" and importlib.util.find_spec("cmaes") is None:
            problems.append(("design", "cmaes needs the optional 'cmaes' package (pip install cmaes); or choose "
                                       "tpe, random, nsga2 or grid"))
        _raise(problems)
        return self


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML values (1 == 1.0, but true != 1)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


# --- objective, pruner, execution ------------------------------------------------------------------------


class ObjectiveSpec(_Spec):
    """The validation metric to optimise and, for nsga2, a second objective (always minimised)."""

    metric: str = "val/acc"
    direction: Literal["maximize", "minimize"]
    second: Literal["params", "flops", "latency"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_direction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("direction") is None:
            metric = str(data.get("metric", "val/acc"))
            return {**data, "direction": "minimize" if "loss" in metric else "maximize"}
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


class PrunerSpec(_Spec):
    type: Literal["none", "median", "hyperband", "successive_halving"] = "none"
    warmup_epochs: int = Field(1, ge=0)
    startup_trials: int = Field(5, ge=0)  # median: trials that are never pruned (Optuna's n_startup_trials)


class ExecutionSpec(_Spec):
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: Devices = "auto"
    workers: int = Field(1, ge=1)
    devices_per_trial: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _enough_devices(self) -> ExecutionSpec:
        if isinstance(self.devices, list) and self.workers * self.devices_per_trial > len(self.devices):
            _raise([("workers", f"{self.workers} workers × {self.devices_per_trial} devices per trial need "
                                f"{self.workers * self.devices_per_trial} devices; devices lists "
                                f"{len(self.devices)}")])
        return self


# --- the study -------------------------------------------------------------------------------------------


def _check_objective(search: SearchSpec, objective: ObjectiveSpec) -> Iterator[Problem]:
    if objective.second is not None and search.design != "nsga2":
        yield "objective.second", f"'{objective.second}' makes the study multi-objective, which needs " \
                                  "search.design: nsga2; set it or remove objective.second"
    if search.design == "nsga2" and objective.second is None:
        yield "search.design", "nsga2 is multi-objective; set objective.second to one of params, flops, latency"


def _check_pruner(pruner: PrunerSpec, objective: ObjectiveSpec, train: TrainSpec) -> Iterator[Problem]:
    if pruner.type == "none":
        return
    if objective.second is not None:
        yield "pruner.type", f"'{pruner.type}' cannot prune a multi-objective study; use none"
    if pruner.type != "median" and pruner.warmup_epochs < 1:
        yield "pruner.warmup_epochs", f"{pruner.type} needs a minimum resource ≥ 1 epoch; got {pruner.warmup_epochs}"
    if pruner.warmup_epochs >= train.epochs:
        yield "pruner.warmup_epochs", f"{pruner.warmup_epochs} ≥ train.epochs ({train.epochs}), so nothing is " \
                                      "ever pruned; use fewer warm-up epochs or pruner.type: none"


_CROSS_CHECKS: tuple[tuple[tuple[str, ...], Callable[..., Iterator[Problem]]], ...] = (
    (("search", "objective"), _check_objective),
    (("pruner", "objective", "train"), _check_pruner),
    (("train", "search"), search_space.train_level_problems),
    (("data", "model", "search"), search_space.model_problems),
)


def _cross_problems(parts: dict[str, BaseModel]) -> list[Problem]:
    return [p for needs, check in _CROSS_CHECKS if all(n in parts for n in needs)
            for p in check(**{n: parts[n] for n in needs})]


class StudySpec(_Spec):
    """One study: everything needed to run, resume and report it."""

    name: str
    description: str | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    objective: ObjectiveSpec = Field(default_factory=lambda: ObjectiveSpec.model_validate({}))
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    storage: str | None = None
    tracking: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        if isinstance(data, dict):  # ``search:`` with every child commented out reads as null
            return {k: v for k, v in data.items() if not (k in SECTIONS and v is None)}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid study name; use letters, digits, '_', '.' and '-'")
        return value

    @model_validator(mode="after")
    def _cross(self) -> StudySpec:
        _raise(_cross_problems({n: getattr(self, n) for n in SECTIONS}))
        return self

    def resolved_dict(self) -> dict[str, Any]:
        """Every field, defaults filled in, as plain YAML/JSON types."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved spec as YAML (``load_spec`` reads it back to an equal spec)."""
        return yaml.safe_dump(self.resolved_dict(), sort_keys=False, allow_unicode=True)


# --- loading ---------------------------------------------------------------------------------------------


def _section_parts(raw: dict[str, Any]) -> dict[str, BaseModel]:
    """The sections that validate on their own, so cross-section checks can still run."""
    parts: dict[str, BaseModel] = {}
    for name in SECTIONS:
        model_cls = StudySpec.model_fields[name].annotation
        try:
            value = raw.get(name)
            parts[name] = model_cls.model_validate({} if value is None else value)
        except ValidationError:
            continue
    return parts


def parse_spec(raw: Any, overrides: Sequence[str] = (), source: str | Path | None = None) -> StudySpec:
    """Validate a mapping (as read from YAML) after applying ``overrides``; raise :class:`SpecError`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError([f"top level: expected a mapping of keys (name, data, model, train, search, ...); "
                         f"got {type(raw).__name__}"], source)
    raw = copy.deepcopy(raw)
    problems = apply_overrides(raw, overrides, StudySpec)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as err:
        lines = format_errors(err, StudySpec)
        if not any(error["loc"] == () for error in err.errors()):  # the cross checks did not run
            lines += _cross_problems(_section_parts(raw))
        problems += [render(path, msg) for path, msg in lines]
        raise SpecError(list(dict.fromkeys(problems)), source) from None
    if problems:
        raise SpecError(problems, source)
    return spec


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> StudySpec:
    """Read a study YAML file, apply ``--set`` overrides (``dotted.key=value``) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(["file not found" if not path.exists() else "not a file"], path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError([yaml_problem(exc)], path) from None
    return parse_spec(raw, overrides, source=path)
