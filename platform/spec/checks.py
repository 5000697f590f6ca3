"""Checks across sections of a spec, run when the whole study is validated.

Each check names the sections it needs, so the others still run when one section is invalid on its own. The
last one builds every model the study would build (on the meta device, via :meth:`ModelSpec.build`) and reports
``create_model``'s errors at the YAML path of the parameter to blame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from pydantic import BaseModel, ValidationError

from .base import is_stored_spec
from .errors import Problem, format_errors, render
from .sections import METRIC_RANGES, DataSpec, ExecutionSpec, ModelSpec, ObjectiveSpec, PrunerSpec, TrainSpec
from .values import READY_NAMES, Design, check_levels, combos, count_levels, label

NUM_CLASSES_PLACEHOLDER = 10  # class count used when checking that design points build
_GRID_CHECK_LIMIT = 64  # grids with more model configurations are checked one parameter at a time


def _check_objective(search: Design, objective: ObjectiveSpec) -> Iterator[Problem]:
    if objective.second is not None and search.design != "nsga2":
        yield "objective.second", f"'{objective.second}' makes the study multi-objective, which needs " \
                                  "search.design: nsga2; set it or remove objective.second"
    if search.design == "nsga2" and objective.second is None:
        yield "search.design", "nsga2 is multi-objective; set objective.second to one of params, flops, latency"


def _check_effect(search: Design, objective: ObjectiveSpec) -> Iterator[Problem]:
    """An effect (the smallest difference that matters) at least as wide as the metric's range decides nothing:
    every comparison would be "equivalent"."""
    effect = getattr(search, "effect", None)
    bounds = METRIC_RANGES.get(objective.metric)
    if effect is None or bounds is None:
        return
    low, high = bounds
    if effect >= high - low:
        yield "search.effect", f"{effect:g} is not smaller than the range of {objective.metric} ({low:g}..{high:g}), " \
                               "so every comparison would be 'equivalent'; use a difference that matters, in " \
                               f"{objective.metric} units, e.g. 0.005"


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


def _check_precision(train: TrainSpec, execution: ExecutionSpec) -> Iterator[Problem]:
    """``16-mixed`` is a CUDA mode: on a CPU Lightning silently runs bf16 instead (the preflight also refuses it
    when ``accelerator: auto`` resolves to the CPU)."""
    if train.precision == "16-mixed" and execution.accelerator == "cpu":
        yield "train.precision", "16-mixed needs a GPU, and execution.accelerator is cpu; use 32-true or bf16-mixed"


def train_level_problems(train: TrainSpec, search: Design) -> Iterator[Problem]:
    """Train parameters' levels against the real train section (e.g. warm-up longer than the epochs)."""
    base = train.model_dump()
    for key, param in search.parameters.items():
        section, _, field = READY_NAMES.get(key, key).partition(".")
        if section != "train":
            continue
        for value in check_levels(param):
            try:
                type(train).model_validate({**base, field: value})
            except ValidationError as err:
                cross = [e for e in err.errors() if e["loc"] == ()]  # field errors: see value_problems
                for path, message in format_errors(cross, type(train)):
                    yield f"search.parameters.{key}", f"{key}={label(value)}: {render(path, message)}"


def model_problems(data: DataSpec, model: ModelSpec, search: Design) -> Iterator[Problem]:
    """Build every model a study would build (on the meta device) and report ``create_model``'s errors.

    Grid: every design point (distinct model configurations only).  Other designs: the base model and each
    level of each model parameter on its own (int ranges value by value, float ranges at their ends).
    A failure is blamed on a single parameter when that parameter's level alone fails.
    """
    if is_stored_spec():  # every model was built when the study began; a builder's code may be elsewhere now
        return
    base = model.model_dump()
    in_channels = data.expected_channels

    def build(overrides: dict[str, Any]) -> str | None:
        options = {k: v for k, v in {**base, **overrides}.items() if v is not None}
        name = options.pop("name")
        frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
        return _build_error(name, in_channels, frozen)

    params = [(key, READY_NAMES.get(key, key).partition(".")[2], p) for key, p in search.parameters.items()
              if READY_NAMES.get(key, key).startswith("model.")]
    base_error = build({})
    singles: dict[tuple[str, str], str] = {}
    for key, field, param in params:
        for value in check_levels(param):
            error = build({field: value})
            if error is not None and error != base_error:
                singles[(key, label(value))] = _blame(field, value, key, error)
    size = math.prod(count_levels(p) or 0 for _, _, p in params)
    if search.design != "grid" or not params or size > _GRID_CHECK_LIMIT:
        if base_error is not None:
            yield "model", base_error
        yield from ((f"search.parameters.{key}", message) for (key, _), message in singles.items())
        return
    blamed: dict[tuple[str, str], str] = {}
    failures: dict[str, str] = {}
    all_names = list(search.parameters)
    model_index = [all_names.index(key) for key, _, _ in params]
    distinct = {tuple(combo[i] for i in model_index) for combo in map(_hashable, combos(search, all_names))}
    for combo in sorted(distinct, key=repr):
        error = build({field: value for (_, field, _), value in zip(params, combo, strict=True)})
        if error is None:
            continue
        culprits = [(key, label(v)) for (key, _, _), v in zip(params, combo, strict=True) if (key, label(v)) in singles]
        for culprit in culprits:
            blamed.setdefault(culprit, singles[culprit])
        if not culprits:
            point = ",".join(f"{key}={label(v)}" for (key, _, _), v in zip(params, combo, strict=True))
            failures.setdefault(point, error)
    yield from ((f"search.parameters.{key}", message) for (key, _), message in blamed.items())
    if failures and base_error is not None and set(failures.values()) == {base_error}:
        yield "model", base_error  # the fixed part of the model is wrong whatever the search sets
    else:
        yield from (("search.parameters", f"design point {point}: {error}") for point, error in failures.items())


def _hashable(combo: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in combo)


@functools.lru_cache(maxsize=4096)
def _build_error(name: str, in_channels: int, options: tuple[tuple[str, Any], ...]) -> str | None:
    """``create_model``'s ValueError message for these options (built on the meta device), or None; any other
    exception a builder raises (a user's builder's TypeError, say) is reported the same way, named."""
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in options}
    model = ModelSpec.model_construct(name=name, **kwargs)  # levels were type-checked; the factory judges values
    try:
        with torch.device("meta"):
            model.build(num_classes=NUM_CLASSES_PLACEHOLDER, in_channels=in_channels)
    except ValueError as exc:
        return str(exc)
    except Exception as exc:  # a user's builder (``module:function``) may raise anything, e.g. a TypeError
        return f"create_model: building {name!r} failed: {type(exc).__name__}: {exc}"
    return None


def _blame(field: str, value: Any, key: str, error: str) -> str:
    """``create_model``'s message, prefixed with ``key=value`` unless it already names the option."""
    return error if f"{field}={value}" in error.replace(" ", "") else f"{key}={label(value)}: {error}"


_CROSS_CHECKS: tuple[tuple[tuple[str, ...], Callable[..., Iterator[Problem]]], ...] = (
    (("search", "objective"), _check_objective),
    (("search", "objective"), _check_effect),
    (("pruner", "objective", "train"), _check_pruner),
    (("train", "execution"), _check_precision),
    (("train", "search"), train_level_problems),
    (("data", "model", "search"), model_problems),
)


def cross_problems(parts: dict[str, BaseModel]) -> list[Problem]:
    return [p for needs, check in _CROSS_CHECKS if all(n in parts for n in needs)
            for p in check(**{n: parts[n] for n in needs})]
