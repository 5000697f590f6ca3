"""What a report is made of: a study's design and its trials grouped by design point, as plain data.

The dashboards never open a store and never import the platform: :mod:`platform.reports.load` reads the Optuna
storage and MLflow (the trial-record names are the platform's contract, defined once in ``platform/records.py``)
into these types, and everything in ``dashboards/`` from the statistics to the HTML page works on them. That keeps
the imports one way: the study runner and the Python API use the dashboards, the dashboards use nothing of theirs
(only ``python -m dashboards``, at the very top, reaches into the platform to load a study).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import optuna


class ReportError(Exception):
    """The report cannot be made (no such study, unreachable store, bad spec): one line, exit code 2."""


@dataclass(frozen=True)
class StudyInfo:
    """What the report needs from the spec and the study's attributes."""

    name: str
    design: str
    metric: str
    direction: str
    second: str | None
    parameters: dict[str, dict[str, Any]]
    reference: dict[str, Any] | None
    seeds: list[int] | dict[str, int]  # a list, or adaptive {min, max}
    model_name: str
    description: str
    parent_run_id: str | None
    spec: dict[str, Any]
    reference_levels: dict[str, str] | None = None  # ``reference`` as level labels (the points' ``level`` form)
    targets: dict[str, str] = field(default_factory=dict)  # parameter -> the spec field it sets (model.kernel_size)
    examples: dict[str, int] | None = None  # examples per split the trials recorded (an accuracy is k/N of these)
    test_metric: str | None = None  # the name of ``PointData.test_acc``'s metric (the loader's records name)


@dataclass
class PointData:
    """All trials of one design point: objective values per seed (averaged if a seed ran twice), counts, cost."""

    key: str
    level: dict[str, str]  # parameter -> level label
    raw_level: dict[str, Any]  # parameter -> Optuna value (for plots of numeric parameters)
    values: dict[int, float] = field(default_factory=dict)
    n_complete: int = 0
    n_pruned: int = 0
    n_failed: int = 0
    params: int | None = None
    flops: int | None = None
    throughput: float | None = None
    test_acc: float | None = None
    second: float | None = None  # mean second objective (nsga2)
    run_ids: dict[int, list[str]] = field(default_factory=dict)  # seed -> MLflow runs of complete trials
    pruned_at: int | None = None  # the earliest epoch (epochs trained) at which one of its seeds was pruned
    trial_values: tuple[float, ...] = ()  # the objective of each COMPLETE trial, in trial order
    failed_seeds: dict[int, str] = field(default_factory=dict)  # seed -> reason: failed for good, never rerun

    @property
    def mean(self) -> float | None:
        """The mean objective over seeds (None without a complete trial)."""
        return float(np.mean(list(self.values.values()))) if self.values else None


@dataclass(frozen=True)
class Curve:
    """A validation metric per epoch for one design point, over seeds."""

    key: str
    epochs: list[int]
    mean: list[float]
    low: list[float]  # min over seeds
    high: list[float]  # max over seeds
    n_seeds: int


@dataclass(frozen=True)
class SearchInfo:
    """Data for the search plots: importances (or why not), history, parallel coordinates, Pareto front."""

    importances: dict[str, float]
    importance_note: str
    numbers: list[int]  # complete trials, in order
    values: list[float]  # first objective
    seconds: list[float]  # second objective (empty when single-objective)
    params: list[dict[str, Any]]
    distributions: dict[str, optuna.distributions.BaseDistribution]
    pareto: list[int]  # trial numbers on the Pareto front


@dataclass(frozen=True)
class StudyData:
    """One study as the report reads it: design, points in table order, trial counts, curves, search data."""

    info: StudyInfo
    points: list[PointData]
    counts: dict[str, int]  # complete / pruned / failed / running / waiting (spurious trials left out)
    curves: list[Curve] | None = None  # None: MLflow was not read
    search: SearchInfo | None = None  # search designs only


def numeric_levels(points: Sequence[PointData], name: str) -> list[float] | None:
    """The raw values of ``name`` across points as floats, or None when any is not a number."""
    values = [p.raw_level.get(name) for p in points]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values]
    return None


class Scored(Protocol):
    """Anything with a design point key and a mean objective (:class:`PointData`, the end-of-study summary)."""

    @property
    def key(self) -> str: ...
    @property
    def mean(self) -> float | None: ...


def best_key(points: Sequence[Scored], direction: str) -> str | None:
    """The design point with the best mean objective (ties: the last key in sort order when maximising, the first
    when minimising) — the report's, the end-of-study summary's and the reference when the spec sets none."""
    scored = [(p.mean, p.key) for p in points if p.mean is not None]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored)[1]
