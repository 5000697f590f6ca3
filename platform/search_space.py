"""Search space of a study: ready parameter names, design points, Optuna distributions, samplers and pruners.

The paper's ablations (Ramachandran et al., 2019, Tables 3-7) vary one model option at a time: the spatial
extent k (``window_size``), positional encoding, heads, the attention stem's value mixtures and which layer
groups use attention.  ``search.parameters`` names such options by a *ready name* (:data:`READY_NAMES`) or by a
dotted path into the spec (``model.<field>`` / ``train.<field>``).

Optuna categorical choices must be None, bool, int, float or str, so list-valued choices (``attention_groups``)
are encoded as string labels: ``[1, 2]`` -> ``"1-2"``, ``[]`` -> ``"none"`` (a list of non-integers becomes its
compact JSON).  Decoding looks the label up among the parameter's own choices, so labels only need to be
unique within one parameter.

Grid studies are not sampled: the runner enqueues every :func:`grid_points` point once per seed, and
:func:`suggest` returns the enqueued values (Optuna hands fixed parameters back unchanged).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from pydantic import BaseModel, ValidationError

from platform._yaml_paths import Problem, did_you_mean, format_errors, join, render

if TYPE_CHECKING:
    from platform.spec import DataSpec, ModelSpec, ParameterSpec, SearchSpec, StudySpec, TrainSpec

Choice = str | int | float | bool | None

READY_NAMES: dict[str, str] = {
    "window_size": "model.kernel_size",
    "heads": "model.heads",
    "pos_enc": "model.pos_enc",
    "stem_mixtures": "model.stem_mixtures",
    "backbone": "model.backbone",
    "attention_groups": "model.attention_groups",
    "width": "model.width",
    "lr": "train.lr",
    "weight_decay": "train.weight_decay",
}
NUM_CLASSES_PLACEHOLDER = 10  # class count used when checking that design points build
_ENUMERATE_LIMIT = 64  # int ranges up to this many values are checked value by value
_GRID_CHECK_LIMIT = 64  # grids with more model configurations are checked one parameter at a time
MAX_GRID_POINTS = 100_000


# --- names and values ------------------------------------------------------------------------------------


def target(key: str, sections: dict[str, type[BaseModel]]) -> tuple[str, str | None]:
    """The dotted spec path a parameter key sets, and a problem message if it names nothing."""
    if key in READY_NAMES:
        return READY_NAMES[key], None
    section, _, field = key.partition(".")
    if section in sections and field:
        fields = list(sections[section].model_fields)
        if field in fields:
            return key, None
        return key, f"'{field}' is not a {section} option{did_you_mean(field, fields)}; valid: {', '.join(fields)}"
    hint = did_you_mean(key, list(READY_NAMES))
    return key, (f"unknown parameter{hint}; use a ready name ({', '.join(READY_NAMES)}) or a dotted path "
                 f"{' or '.join(f'{s}.<field>' for s in sections)}")


def encode(value: Any) -> Choice:
    """An Optuna-compatible categorical choice for a spec value (lists become string labels)."""
    if not isinstance(value, list):
        return value
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "-".join(str(v) for v in value) if value else "none"
    return json.dumps(value, separators=(",", ":"))


def decode(param: ParameterSpec, value: Choice) -> Any:
    """The spec value behind an Optuna value of ``param`` (inverse of :func:`encode` over its choices)."""
    if param.type != "categorical":
        return value
    for choice in param.choices or []:
        encoded = encode(choice)
        if type(encoded) is type(value) and encoded == value:
            return copy_value(choice)
    valid = ", ".join(repr(encode(c)) for c in param.choices or [])
    raise ValueError(f"value {value!r} is not one of the parameter's encoded choices; valid: {valid}")


def copy_value(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def label(value: Any) -> str:
    """How a value appears in a design point's key."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(encode(value))


def levels(param: ParameterSpec) -> list[Any] | None:
    """The discrete values of a parameter (categorical choices, expanded int range); None for float ranges."""
    if param.type == "categorical":
        return [copy_value(c) for c in param.choices or []]
    if param.type == "int":
        return list(range(int(param.low), int(param.high) + 1, param.step or 1))
    return None


def count_levels(param: ParameterSpec) -> int | None:
    """How many discrete values :func:`levels` would give (without building them); None for float ranges."""
    if param.type == "categorical":
        return len(param.choices or [])
    if param.type == "int":
        return max(0, (int(param.high) - int(param.low)) // (param.step or 1) + 1)
    return None


def check_levels(param: ParameterSpec) -> list[Any]:
    """Values worth checking: every level of a short list or range, else a range's two ends."""
    count = count_levels(param)
    if count is not None and count <= _ENUMERATE_LIMIT:
        return levels(param) or []
    return [param.low, param.high]


# --- design points ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesignPoint:
    """One configuration: parameter values keyed as written in the spec, a stable label, Optuna values."""

    params: dict[str, Any]
    key: str
    optuna_params: dict[str, Choice]


def make_point(params: dict[str, Any]) -> DesignPoint:
    """A design point for ``params`` (keys in spec order); empty params give the ``base`` point."""
    key = ",".join(f"{name}={label(value)}" for name, value in params.items()) or "base"
    return DesignPoint(dict(params), key, {name: encode(value) for name, value in params.items()})


def _combos(search: SearchSpec, names: list[str]) -> Iterator[tuple[Any, ...]]:
    """Level combinations of ``names``: the explicit ``search.points`` if given, else the cartesian product."""
    if search.points is not None:
        seen = set()
        for point in search.points:
            combo = tuple(copy_value(point[name]) for name in names)
            if label(list(combo)) not in seen:
                seen.add(label(list(combo)))
                yield combo
        return
    grids = []
    for name in names:
        values = levels(search.parameters[name])
        if values is None:
            raise ValueError(f"search.parameters.{name}: a float range has no grid; use categorical or int")
        grids.append(values)
    yield from itertools.product(*grids)


def grid_points(spec: StudySpec) -> list[DesignPoint]:
    """Every design point of a grid: ``search.points`` if listed, else the cartesian product of every
    parameter's levels, in YAML order (the last parameter varies fastest)."""
    names = list(spec.search.parameters)
    return [make_point(dict(zip(names, combo, strict=True))) for combo in _combos(spec.search, names)]


def point_from_optuna(spec: StudySpec, optuna_params: dict[str, Choice]) -> DesignPoint:
    """Decode a trial's ``params`` (as stored by Optuna) back into a design point."""
    parameters = spec.search.parameters
    return make_point({name: decode(parameters[name], optuna_params[name]) for name in parameters})


def distributions(spec: StudySpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """One Optuna distribution per parameter, shared by enqueued grid trials and sampled trials."""
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for name, param in spec.search.parameters.items():
        if param.type == "categorical":
            out[name] = optuna.distributions.CategoricalDistribution([encode(c) for c in param.choices or []])
        elif param.type == "int":
            out[name] = optuna.distributions.IntDistribution(int(param.low), int(param.high), step=param.step or 1)
        else:
            log = param.type == "log_float"
            out[name] = optuna.distributions.FloatDistribution(float(param.low), float(param.high), log=log)
    return out


def suggest(trial: optuna.trial.BaseTrial, spec: StudySpec) -> DesignPoint:
    """Ask ``trial`` for every parameter (enqueued trials get their fixed values back) and decode them."""
    values: dict[str, Choice] = {}
    for name, dist in distributions(spec).items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, optuna.distributions.IntDistribution):
            values[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step)
        else:
            assert isinstance(dist, optuna.distributions.FloatDistribution)
            values[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return point_from_optuna(spec, values)


def resolve(spec: StudySpec, point: DesignPoint) -> tuple[dict[str, Any], TrainSpec]:
    """Model options and train spec for one design point.

    The options include ``name``; null options are dropped so ``sasa.create_model``'s defaults apply:
    ``name = opts.pop("name"); sasa.create_model(name, num_classes, in_channels=..., **opts)``.
    Both sections are re-validated with the point's values applied (raises ``ValueError`` if invalid).
    """
    updates: dict[str, dict[str, Any]] = {"model": {}, "train": {}}
    for name, value in point.params.items():
        section, _, field = READY_NAMES.get(name, name).partition(".")
        updates[section][field] = copy_value(value)
    model = type(spec.model).model_validate({**spec.model.model_dump(), **updates["model"]})
    train = type(spec.train).model_validate({**spec.train.model_dump(), **updates["train"]})
    return {k: v for k, v in model.model_dump().items() if v is not None}, train


def directions(spec: StudySpec) -> list[str]:
    """Optuna study directions: the metric's, then ``minimize`` for a second objective (params/flops/latency)."""
    return [spec.objective.direction] + (["minimize"] if spec.objective.second else [])


# --- samplers and pruners --------------------------------------------------------------------------------


def make_sampler(spec: StudySpec, seed: int = 0) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``search.design``.

    grid: a seeded RandomSampler; grid studies enqueue every point, so it only samples if the queue is empty.
    tpe: multivariate TPE.  cmaes: CMA-ES over numeric parameters; categorical ones are sampled independently
    (randomly), which Optuna allows.  nsga2: NSGA-II for the two-objective case.
    """
    design = spec.search.design
    if design in ("grid", "random"):
        return optuna.samplers.RandomSampler(seed=seed)
    if design == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if design == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if design == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise ValueError(f"search.design {design!r} is not valid; choose one of grid, tpe, random, cmaes, nsga2")


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The pruner for ``pruner.type``; one step is one epoch (``warmup_epochs`` = warm-up/minimum resource)."""
    kind, warmup = spec.pruner.type, spec.pruner.warmup_epochs
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.pruner.startup_trials, n_warmup_steps=warmup)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource=spec.train.epochs)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup)
    raise ValueError(f"pruner.type {kind!r} is not valid; choose one of none, median, hyperband, successive_halving")


# --- are the levels valid? ------------------------------------------------------------------------------


def value_problems(
    path: str, target_path: str, param: ParameterSpec, sections: dict[str, type[BaseModel]]
) -> list[Problem]:
    """Check a parameter's levels against the target field's own validation (e.g. odd window sizes)."""
    section, field = target_path.split(".", 1)
    model_cls = sections[section]

    def check(value: Any) -> list[str]:
        try:
            model_cls.model_validate({field: value})
        except ValidationError as err:  # field-level errors only: cross-field ones depend on the real section
            return [msg for _, msg in format_errors([e for e in err.errors() if e["loc"][:1] == (field,)],
                                                    model_cls)]
        return []

    problems: list[Problem] = []
    if param.type == "categorical":
        for i, value in enumerate(param.choices or []):
            problems += [(join(path, "choices", i), msg) for msg in check(value)]
    elif param.type == "int":
        bad = [(v, msgs) for v in check_levels(param) if (msgs := check(v))]
        if bad:
            values = ", ".join(str(v) for v, _ in bad)
            problems.append((path, f"range {param.low}..{param.high} (step {param.step}) includes invalid "
                                   f"values {values}: {bad[0][1][0]}"))
    else:
        for key in ("low", "high"):
            problems += [(join(path, key), msg) for msg in check(getattr(param, key))]
    return problems


def train_level_problems(train: TrainSpec, search: SearchSpec) -> Iterator[Problem]:
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


# --- do the design points build? -------------------------------------------------------------------------


def model_problems(data: DataSpec, model: ModelSpec, search: SearchSpec) -> Iterator[Problem]:
    """Build every model a study would build (on the meta device) and report ``create_model``'s errors.

    Grid: every design point (distinct model configurations only).  Other designs: the base model and each
    level of each model parameter on its own (int ranges value by value, float ranges at their ends).
    A failure is blamed on a single parameter when that parameter's level alone fails.
    """
    base = model.model_dump()
    in_channels = data.in_channels or (1 if data.source == "digits" else 3)

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
    combos = {tuple(combo[i] for i in model_index) for combo in map(_hashable, _combos(search, all_names))}
    for combo in sorted(combos, key=repr):
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
    """``create_model``'s ValueError message for these options (built on the meta device), or None."""
    import torch

    from sasa import create_model

    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in options}
    try:
        with torch.device("meta"):
            create_model(name, NUM_CLASSES_PLACEHOLDER, in_channels=in_channels, **kwargs)
    except ValueError as exc:
        return str(exc)
    return None


def _blame(field: str, value: Any, key: str, error: str) -> str:
    """``create_model``'s message, prefixed with ``key=value`` unless it already names the option."""
    return error if f"{field}={value}" in error.replace(" ", "") else f"{key}={label(value)}: {error}"
