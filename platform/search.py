"""From a spec to Optuna and to models: design points, suggest, resolve, the model builder, sampler and pruner.

Grid studies are not sampled: the runner enqueues every :func:`grid_points` point once per seed, and
:func:`suggest` returns the enqueued values (Optuna hands fixed parameters back unchanged). A design point's
values are spec values (lists included); :func:`~.spec.values.encode` turns them into Optuna choices and
:func:`~.spec.parameters.decode` back. :func:`build_model` is the one way every part of the platform (trials, DDP
ranks, the dry run) builds the network of a design point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from torch import nn

from .spec.parameters import combos, count_levels, decode
from .spec.sections import ModelSpec, TrainSpec
from .spec.study_spec import StudySpec
from .spec.values import READY_NAMES, Choice, copy_value, encode, label

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


def grid_points(spec: StudySpec) -> list[DesignPoint]:
    """Every design point of a grid: ``search.points`` if listed, else the cartesian product of every
    parameter's levels, in YAML order (the last parameter varies fastest)."""
    names = list(spec.search.parameters)
    return [make_point(dict(zip(names, combo, strict=True))) for combo in combos(spec.search, names)]


def space_size(spec: StudySpec) -> int | None:
    """How many distinct design points the search space holds; None when a float parameter makes it unbounded."""
    size = 1
    for param in spec.search.parameters.values():
        count = count_levels(param)
        if count is None:
            return None
        size *= count
    return size


def sampled_target(spec: StudySpec) -> int | None:
    """Distinct design points a sampled design runs: ``n_trials``, capped by the space's size (None: no limit)."""
    size = space_size(spec)
    if spec.search.n_trials is None:
        return size
    return spec.search.n_trials if size is None else min(spec.search.n_trials, size)


def reference_point(spec: StudySpec) -> DesignPoint | None:
    """``search.reference`` as one design point (a sampled design's confirmation round needs every parameter set);
    None when it sets fewer."""
    reference = spec.search.reference
    if not reference or any(name not in reference for name in spec.search.parameters):
        return None
    return make_point({name: reference[name] for name in spec.search.parameters})


def planned_points(spec: StudySpec) -> int:
    """Design points a sampled design's confirmation round re-runs (``platform/study/confirm.py``), as far as the
    spec says: fewer when fewer points completed."""
    confirm = spec.search.confirmation
    if confirm is None:
        return 0
    target = sampled_target(spec)
    chosen = confirm.finalists if target is None else min(confirm.finalists, target)
    return chosen + (reference_point(spec) is not None)


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


def resolve(spec: StudySpec, point: DesignPoint) -> tuple[ModelSpec, TrainSpec]:
    """The model and train sections of one design point: the spec's, with the point's values applied.

    Both sections are re-validated with the point's values (raises ``ValueError`` if invalid).
    """
    updates: dict[str, dict[str, Any]] = {"model": {}, "train": {}}
    for name, value in point.params.items():
        section, _, field = READY_NAMES.get(name, name).partition(".")
        updates[section][field] = copy_value(value)
    model = ModelSpec.model_validate({**spec.model.model_dump(), **updates["model"]})
    train = TrainSpec.model_validate({**spec.train.model_dump(), **updates["train"]})
    return model, train


def build_model(spec: StudySpec, point: DesignPoint, *, num_classes: int, in_channels: int) -> nn.Module:
    """The network of ``point`` for data with ``num_classes`` classes and ``in_channels`` channels."""
    model, _ = resolve(spec, point)
    return model.build(num_classes=num_classes, in_channels=in_channels)


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
    """The pruner for ``pruner.type``; one step is one epoch *trained* (1 after the first epoch).

    The first decision comes once ``warmup_epochs`` epochs are trained (median ``n_warmup_steps``,
    hyperband/successive-halving minimum resource); hyperband's maximum resource is ``train.epochs``, the
    same unit. The final epoch is never pruned (``training.pruning``).
    """
    kind, first = spec.pruner.type, spec.pruner.warmup_epochs
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.pruner.startup_trials, n_warmup_steps=first)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=spec.train.epochs)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first)
    raise ValueError(f"pruner.type {kind!r} is not valid; choose one of none, median, hyperband, successive_halving")


