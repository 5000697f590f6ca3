"""Reading a study's stores into tidy rows (read-only): Optuna trials per design point, MLflow curves, search data.

Nothing here draws or formats; :mod:`dashboards.report` turns these rows into the ablation table, plots and files.
The names read are the study runner's contract, defined once in the platform's ``records`` module (trial user
attributes, study attributes, MLflow tags); per-epoch validation metrics are on the child MLflow runs
(step = epoch).
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from .lab import records, stores
from .lab import values as spec_values

ARCHIVE_MARK = records.ARCHIVE_MARK
MIN_IMPORTANCE_TRIALS = 10  # PED-ANOVA contrasts the top 10 % of trials with all of them


class ReportError(Exception):
    """The report cannot be made (no such study, unreachable store, bad spec): one line, exit code 2."""


# --- opening the stores (read-only) ----------------------------------------------------------------------------


def _sqlite_must_exist(uri: str, option: str) -> None:
    """SQLAlchemy creates a missing SQLite file on connect; a report must never create a store."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ReportError(f"{option} {stores.redact(uri)}: no such database file ({path}); run a study first or "
                              f"pass the right {option}")


def open_optuna(storage_url: str) -> optuna.storages.BaseStorage:
    _sqlite_must_exist(storage_url, "--storage")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
            return stores.open_storage(storage_url)
    except stores.StoreError as exc:
        raise ReportError(str(exc)) from None


def open_mlflow(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for a reachable tracking store."""
    _sqlite_must_exist(tracking_uri, "--tracking-uri")
    try:
        stores.check_tracking(tracking_uri)
    except stores.StoreError as exc:
        raise ReportError(str(exc)) from None
    return MlflowClient(tracking_uri=tracking_uri)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(storage: optuna.storages.BaseStorage, name: str, storage_url: str) -> optuna.Study:
    names = study_names(storage)
    if name not in names:
        live = [n for n in names if ARCHIVE_MARK not in n]
        listed = ", ".join(live) if live else "none"
        raise ReportError(f"no study named '{name}' in {stores.redact(storage_url)}; studies there: {listed}")
    return optuna.load_study(study_name=name, storage=storage)


def stored_spec(study: optuna.Study) -> dict[str, Any]:
    spec = study.user_attrs.get(records.STUDY_SPEC)
    if not isinstance(spec, dict):
        raise ReportError(f"study '{study.study_name}' has no '{records.STUDY_SPEC}' attribute: it was not made by "
                          "python -m platform.study, so its design is unknown")
    return spec


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


def _get_study_info(study: optuna.Study, spec: dict[str, Any]) -> StudyInfo:
    search, objective = spec.get("search", {}), spec.get("objective", {})
    return StudyInfo(
        name=study.study_name,
        design=str(search.get("design", "grid")),
        metric=str(objective.get("metric", "val/acc")),
        direction=str(objective.get("direction", "maximize")),
        second=objective.get("second"),
        parameters=dict(search.get("parameters") or {}),
        reference=search.get("reference"),
        seeds=dict(seeds) if isinstance(seeds := search.get("seeds") or [], dict) else list(seeds),
        model_name=str(spec.get("model", {}).get("name", "")),
        description=str(spec.get("description") or ""),
        parent_run_id=study.user_attrs.get(records.STUDY_PARENT_RUN),
        spec=spec,
    )


def param_levels(param: dict[str, Any]) -> list[str] | None:
    """Labels of a parameter's discrete levels in spec order (None for float ranges)."""
    if param.get("type", "categorical") == "categorical":
        return [spec_values.label(c) for c in param.get("choices") or []]
    if param.get("type") == "int":
        step = int(param.get("step") or 1)
        return [spec_values.label(v) for v in range(int(param["low"]), int(param["high"]) + 1, step)]
    return None


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


def usable_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that belong to a design point (skips spurious ones and queue entries not yet started)."""
    groups = records.trials_by_point(study.get_trials(deepcopy=False), started_only=True)
    return sorted((t for trials in groups.values() for t in trials), key=lambda t: t.number)


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _get_point_info(study: optuna.Study, info: StudyInfo) -> list[PointData]:
    """One :class:`PointData` per design point, ordered by the spec's levels (grid) or first appearance."""
    groups = records.trials_by_point(study.get_trials(deepcopy=False), started_only=True)
    points = []
    for key, trials in groups.items():
        with_params = next((t for t in trials if t.params), trials[0])
        point = PointData(key=key, level={n: spec_values.label(v) for n, v in with_params.params.items()},
                          raw_level=dict(with_params.params))
        per_seed: dict[int, list[float]] = {}
        throughputs, tests, seconds = [], [], []
        for trial in trials:
            record = records.TrialRecord.of(trial)
            if trial.state == TrialState.COMPLETE:
                seed = record.seed or 0
                per_seed.setdefault(seed, []).append(record.values[0])
                if record.mlflow_run_id is not None:
                    point.run_ids.setdefault(seed, []).append(record.mlflow_run_id)
                if record.throughput is not None:
                    throughputs.append(record.throughput)
                if record.test_acc is not None:
                    tests.append(record.test_acc)
                if len(record.values) > 1:
                    seconds.append(record.values[1])
            point.n_complete += trial.state == TrialState.COMPLETE
            point.n_pruned += trial.state == TrialState.PRUNED
            at = trial.user_attrs.get(records.ATTR_PRUNED_AT) if trial.state == TrialState.PRUNED else None
            if at is not None:
                point.pruned_at = int(at) if point.pruned_at is None else min(point.pruned_at, int(at))
            point.n_failed += records.is_failure(trial)
            if point.params is None and record.params is not None:
                point.params, point.flops = record.params, record.flops
        point.values = {seed: statistics.fmean(v) for seed, v in sorted(per_seed.items())}
        point.throughput, point.test_acc, point.second = _mean(throughputs), _mean(tests), _mean(seconds)
        points.append(point)
    return _ordered(points, info)


def _ordered(points: list[PointData], info: StudyInfo) -> list[PointData]:
    """Grid: the spec's level order (last parameter fastest). Search designs: best mean first."""
    if info.design != "grid":
        sign = -1.0 if info.direction == "maximize" else 1.0
        return sorted(points, key=lambda p: (not p.values, sign * statistics.fmean(p.values.values()) if p.values
                                             else 0.0))
    orders = {name: param_levels(p) or [] for name, p in info.parameters.items()}

    def position(item: tuple[int, PointData]) -> tuple:
        index, point = item
        ranks = [orders.get(n, []).index(v) if v in orders.get(n, []) else len(orders.get(n, [])) + index
                 for n, v in point.level.items()]
        return (*ranks, index)

    return [p for _, p in sorted(enumerate(points), key=position)]


# --- MLflow ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """A validation metric per epoch for one design point, over seeds."""

    key: str
    epochs: list[int]
    mean: list[float]
    low: list[float]  # min over seeds
    high: list[float]  # max over seeds
    n_seeds: int


def _get_curve_info(client: Any, points: Sequence[PointData], metric: str) -> list[Curve]:
    """Mean and min–max band of ``metric`` per epoch from the child runs' metric history (complete trials)."""
    curves = []
    for point in points:
        per_epoch: dict[int, list[float]] = {}
        n_seeds = 0
        for run_ids in point.run_ids.values():
            history: dict[int, list[float]] = {}
            for run_id in run_ids:
                for m in client.get_metric_history(run_id, metric):
                    history.setdefault(int(m.step), []).append(float(m.value))
            n_seeds += bool(history)
            for epoch, values in history.items():
                per_epoch.setdefault(epoch, []).append(statistics.fmean(values))
        if not per_epoch:
            continue
        epochs = sorted(per_epoch)
        curves.append(Curve(
            key=point.key, epochs=epochs,
            mean=[statistics.fmean(per_epoch[e]) for e in epochs],
            low=[min(per_epoch[e]) for e in epochs], high=[max(per_epoch[e]) for e in epochs], n_seeds=n_seeds,
        ))
    return curves


# --- search designs ----------------------------------------------------------------------------------------


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


def _importances(study: optuna.Study, complete: Sequence[FrozenTrial]) -> tuple[dict[str, float], str]:
    varied = {n for t in complete for n, d in t.distributions.items() if not d.single()}
    if not varied:
        return {}, "no parameter varies, so there are no importances"
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return {}, (f"parameter importances need ≥ {MIN_IMPORTANCE_TRIALS} complete trials (PED-ANOVA compares "
                    f"the top 10 % with all); this study has {len(complete)}")
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator, params=sorted(varied))
    target = "reaching the Pareto front" if len(study.directions) > 1 else "reaching the top 10 % of the objective"
    return dict(importances), f"PED-ANOVA (Optuna {optuna.__version__}), importance for {target}, normalised to 1"


def _get_search_info(study: optuna.Study) -> SearchInfo:
    complete = [t for t in usable_trials(study) if t.state == TrialState.COMPLETE]
    importances, note = _importances(study, complete)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for trial in complete:
        distributions.update(trial.distributions)
    pareto: list[int] = []
    if len(study.directions) > 1 and complete:
        numbers = {t.number for t in complete}
        pareto = sorted(t.number for t in study.best_trials if t.number in numbers)
    return SearchInfo(
        importances=importances,
        importance_note=note,
        numbers=[t.number for t in complete],
        values=[float(t.values[0]) for t in complete],
        seconds=[float(t.values[1]) for t in complete if len(t.values) > 1],
        params=[dict(t.params) for t in complete],
        distributions=distributions,
        pareto=pareto,
    )


def numeric_levels(points: Sequence[PointData], name: str) -> list[float] | None:
    """The raw values of ``name`` across points as floats, or None when any is not a number."""
    values = [p.raw_level.get(name) for p in points]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values]
    return None


def best_key(points: Sequence[PointData], direction: str) -> str | None:
    """The design point with the best mean objective."""
    scored = [(float(np.mean(list(p.values.values()))), p.key) for p in points if p.values]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored)[1]
