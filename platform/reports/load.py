"""Reading a study's stores into the report's data (read-only): Optuna trials per design point, MLflow curves,
search data — :class:`dashboards.data.StudyData`.

Nothing here draws or formats. The names read are the study runner's contract (:mod:`..records`: trial user
attributes, study attributes, MLflow tags); per-epoch validation metrics are on the child MLflow runs (step =
epoch). A report never creates a store: a missing SQLite file is an error, not an empty database.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from ..records import (
    ARCHIVE_MARK,
    ATTR_EXAMPLES,
    ATTR_FAIL,
    ATTR_MODEL_URI,
    ATTR_POINT,
    ATTR_PRUNED_AT,
    ATTR_RUN,
    METRIC_TEST_ACC,
    METRIC_TEST_LOSS,
    METRIC_VAL_ACC,
    STUDY_PARENT_RUN,
    STUDY_SPEC,
    TrialRecord,
    is_failure,
    is_spurious,
    trials_by_point,
)
from ..spec.values import READY_NAMES, StoredDimension, label, levels
from ..stores.connect import StoreError, check_tracking, open_storage_read_only, read_only_client
from ..stores.redaction import redact
from ..stores.sqlite_files import MLFLOW, sqlite_path, store_problem
from .views import data

ReportError = data.ReportError
MIN_IMPORTANCE_TRIALS = 10  # PED-ANOVA contrasts the top 10 % of trials with all of them

# --- opening the stores (read-only) ----------------------------------------------------------------------------


def open_optuna(storage_url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage, read-only (a SQLite file must exist; it is opened with ``mode=ro``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return open_storage_read_only(storage_url)
    except StoreError as exc:
        raise ReportError(str(exc)) from None


def open_mlflow(tracking_uri: str, *, write: bool = False) -> MlflowClient:
    """An ``MlflowClient`` for a reachable tracking store: read-only unless ``write`` (``--log``)."""
    try:
        if not write:
            return read_only_client(tracking_uri)
        if sqlite_path(tracking_uri) is not None and not sqlite_path(tracking_uri).is_file():
            raise StoreError(f"--tracking-uri {redact(tracking_uri)}: no such database file "
                             f"({sqlite_path(tracking_uri)}); run a study first or pass the right --tracking-uri")
        problem = store_problem(tracking_uri, MLFLOW, "--tracking-uri")
        if problem:
            raise StoreError(problem)
        check_tracking(tracking_uri)
    except StoreError as exc:
        raise ReportError(str(exc)) from None
    return MlflowClient(tracking_uri=tracking_uri)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(storage: optuna.storages.BaseStorage, name: str, storage_url: str) -> optuna.Study:
    names = study_names(storage)
    if name not in names:
        live = [n for n in names if ARCHIVE_MARK not in n]
        listed = ", ".join(live) if live else "none"
        raise ReportError(f"no study named '{name}' in {redact(storage_url)}; studies there: {listed}")
    return optuna.load_study(study_name=name, storage=storage)


def stored_spec(study: optuna.Study) -> dict[str, Any]:
    spec = study.user_attrs.get(STUDY_SPEC)
    if not isinstance(spec, dict):
        raise ReportError(f"study '{study.study_name}' has no '{STUDY_SPEC}' attribute: it was not made by "
                          "python -m platform.study, so its design is unknown")
    return spec


# --- the design and its points ---------------------------------------------------------------------------------


def study_info(study: optuna.Study | None, spec: dict[str, Any]) -> data.StudyInfo:
    """What the report needs from the resolved spec dict and the study's attributes (``study`` None: the design
    alone, before any trial — the dry run's power statement)."""
    search, objective = spec.get("search", {}), spec.get("objective", {})
    parameters = dict(search.get("parameters") or {})
    reference = search.get("reference")
    return data.StudyInfo(
        name=study.study_name if study is not None else str(spec.get("name", "")),
        design=str(search.get("design", "grid")),
        metric=str(objective.get("metric", METRIC_VAL_ACC)),
        direction=str(objective.get("direction", "maximize")),
        second=objective.get("second"),
        parameters=parameters,
        reference=reference,
        seeds=dict(seeds) if isinstance(seeds := search.get("seeds") or [], dict) else list(seeds),
        model_name=str(spec.get("model", {}).get("name", "")),
        description=str(spec.get("description") or ""),
        parent_run_id=study.user_attrs.get(STUDY_PARENT_RUN) if study is not None else None,
        spec=spec,
        reference_levels={n: label(v) for n, v in reference.items()} if reference else None,
        targets={name: READY_NAMES.get(name, name) for name in parameters},
        examples=recorded_examples(study) if study is not None else None,
        test_metric=METRIC_TEST_ACC,
    )


def recorded_examples(study: optuna.Study) -> dict[str, int] | None:
    """The examples per split the trials recorded, when every COMPLETE trial that recorded them agrees."""
    seen = {tuple(sorted(e.items())) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if isinstance(e := t.user_attrs.get(ATTR_EXAMPLES), dict)}
    return dict(seen.pop()) if len(seen) == 1 else None


def param_levels(param: dict[str, Any]) -> list[str] | None:
    """Labels of a parameter's discrete levels in spec order (None for float ranges): the spec's own
    :func:`~..spec.values.levels`, read from the stored spec dict."""
    found = levels(StoredDimension.of(param))
    return None if found is None else [label(v) for v in found]


def usable_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that belong to a design point (skips spurious ones and queue entries not yet started)."""
    groups = trials_by_point(study.get_trials(deepcopy=False), started_only=True)
    return sorted((t for trials in groups.values() for t in trials), key=lambda t: t.number)


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def point_info(study: optuna.Study, info: data.StudyInfo) -> list[data.PointData]:
    """One :class:`~dashboards.data.PointData` per design point, ordered by the spec's levels (grid) or best first."""
    return _ordered(point_data(study.get_trials(deepcopy=False), started_only=True), info)


def point_data(trials: Sequence[FrozenTrial], *, started_only: bool = False) -> list[data.PointData]:
    """Each design point's trials summarised (objective per seed, counts, cost, test accuracy), in order of first
    appearance; ``started_only`` leaves out points that only have queue entries no worker has claimed yet. The one
    per-point summary: the report's (:func:`point_info`) and the end-of-study summary's."""
    return [_point(key, group) for key, group in trials_by_point(trials, started_only=started_only).items()]


def _point(key: str, trials: Sequence[FrozenTrial]) -> data.PointData:
    with_params = next((t for t in trials if t.params), trials[0])
    point = data.PointData(key=key, level={n: label(v) for n, v in with_params.params.items()},
                           raw_level=dict(with_params.params))
    per_seed: dict[int, list[float]] = {}
    throughputs, tests, seconds, complete = [], [], [], []
    for trial in trials:
        record = TrialRecord.of(trial)
        if trial.state == TrialState.COMPLETE:
            seed = record.seed or 0
            per_seed.setdefault(seed, []).append(record.values[0])
            complete.append(record.values[0])
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
        at = trial.user_attrs.get(ATTR_PRUNED_AT) if trial.state == TrialState.PRUNED else None
        if at is not None:
            point.pruned_at = int(at) if point.pruned_at is None else min(point.pruned_at, int(at))
        point.n_failed += is_failure(trial)
        if is_failure(trial) and record.seed is not None:
            point.failed_seeds.setdefault(record.seed, str(trial.user_attrs[ATTR_FAIL]))
        if point.params is None and record.params is not None:
            point.params, point.flops = record.params, record.flops
    point.values = {seed: statistics.fmean(v) for seed, v in sorted(per_seed.items())}
    point.failed_seeds = {s: r for s, r in sorted(point.failed_seeds.items()) if s not in point.values}
    point.trial_values = tuple(complete)
    point.throughput, point.test_acc, point.second = _mean(throughputs), _mean(tests), _mean(seconds)
    return point


def _ordered(points: list[data.PointData], info: data.StudyInfo) -> list[data.PointData]:
    """Grid: the spec's level order (last parameter fastest). Search designs: best mean first."""
    if info.design != "grid":
        sign = -1.0 if info.direction == "maximize" else 1.0
        return sorted(points, key=lambda p: (not p.values, sign * statistics.fmean(p.values.values()) if p.values
                                             else 0.0))
    orders = {name: param_levels(p) or [] for name, p in info.parameters.items()}

    def position(item: tuple[int, data.PointData]) -> tuple:
        index, point = item
        ranks = [orders.get(n, []).index(v) if v in orders.get(n, []) else len(orders.get(n, [])) + index
                 for n, v in point.level.items()]
        return (*ranks, index)

    return [p for _, p in sorted(enumerate(points), key=position)]


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state, spurious ones (standing for no design point) left out."""
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
             TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
    counts = dict.fromkeys(names.values(), 0)
    for trial in study.get_trials(deepcopy=False):
        if not is_spurious(trial):
            counts[names[trial.state]] += 1
    return counts


# --- one row per trial ------------------------------------------------------------------------------------------

_OMIT = object()  # a field the trial does not have (value_2 of a single-objective study): no column
TRIAL_FIELDS: dict[str, Callable[[FrozenTrial, TrialRecord], Any]] = {
    "trial": lambda t, r: r.number,
    "state": lambda t, r: r.state,
    ATTR_POINT: lambda t, r: r.design_point,
    "seed": lambda t, r: r.seed,
    "value": lambda t, r: r.value,
    "value_2": lambda t, r: r.values[1] if len(r.values) > 1 else _OMIT,
    "spurious": lambda t, r: r.spurious,
    "params": lambda t, r: r.params,
    "flops": lambda t, r: r.flops,
    "throughput": lambda t, r: r.throughput,
    "test_acc": lambda t, r: r.test_acc,
    "test_loss": lambda t, r: r.test.get(METRIC_TEST_LOSS),
    ATTR_FAIL: lambda t, r: r.fail_reason,
    ATTR_RUN: lambda t, r: r.mlflow_run_id,
    ATTR_MODEL_URI: lambda t, r: r.model_uri,
    "start": lambda t, r: t.datetime_start,
    "complete": lambda t, r: t.datetime_complete,
}


def trial_row(trial: FrozenTrial, names: Sequence[str], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One trial as an export row: the columns ``names`` in order, each read from the trial's record
    (:data:`TRIAL_FIELDS`) or given in ``extra``. The one per-trial export, of :func:`sasa_lab.load_results` and
    ``python -m dashboards --export``."""
    record, extra = TrialRecord.of(trial), extra or {}
    row = {name: extra[name] if name in extra else TRIAL_FIELDS[name](trial, record) for name in names}
    return {name: value for name, value in row.items() if value is not _OMIT}


# --- MLflow ----------------------------------------------------------------------------------------------------


def curve_info(client: MlflowClient, points: Sequence[data.PointData], metric: str) -> list[data.Curve]:
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
        curves.append(data.Curve(
            key=point.key, epochs=epochs,
            mean=[statistics.fmean(per_epoch[e]) for e in epochs],
            low=[min(per_epoch[e]) for e in epochs], high=[max(per_epoch[e]) for e in epochs], n_seeds=n_seeds,
        ))
    return curves


# --- search designs --------------------------------------------------------------------------------------------


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


def search_info(study: optuna.Study) -> data.SearchInfo:
    complete = [t for t in usable_trials(study) if t.state == TrialState.COMPLETE]
    importances, note = _importances(study, complete)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for trial in complete:
        distributions.update(trial.distributions)
    pareto: list[int] = []
    if len(study.directions) > 1 and complete:
        numbers = {t.number for t in complete}
        pareto = sorted(t.number for t in study.best_trials if t.number in numbers)
    return data.SearchInfo(
        importances=importances,
        importance_note=note,
        numbers=[t.number for t in complete],
        values=[float(t.values[0]) for t in complete],
        seconds=[float(t.values[1]) for t in complete if len(t.values) > 1],
        params=[dict(t.params) for t in complete],
        distributions=distributions,
        pareto=pareto,
    )


def study_data(study: optuna.Study, spec: dict[str, Any] | None = None,
               client: MlflowClient | None = None) -> data.StudyData:
    """Everything a report reads: ``spec`` (the resolved spec dict) defaults to the one stored on the study;
    ``client`` (an MlflowClient) adds the validation curves."""
    info = study_info(study, spec if spec is not None else stored_spec(study))
    points = point_info(study, info)
    return data.StudyData(
        info=info, points=points, counts=trial_counts(study),
        curves=curve_info(client, points, info.metric) if client is not None else None,
        search=search_info(study) if info.design != "grid" else None,
    )
