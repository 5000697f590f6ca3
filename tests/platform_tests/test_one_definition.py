"""Each of these is defined once and read by every user: the per-point summary (report and end-of-study summary),
the best design point, the per-trial export row, "is this (design point, seed) done" and a parameter's levels."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from dashboards.data import PointData, best_key
from platform.records import (
    ATTR_FAIL,
    ATTR_FLOPS,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_PRUNED_AT,
    ATTR_SEED,
    ATTR_SPURIOUS,
    ATTR_TEST,
    ATTR_THROUGHPUT,
    METRIC_TEST_ACC,
    METRIC_TEST_LOSS,
)
from platform.reports.load import TRIAL_FIELDS, param_levels, point_data, point_info, study_info, trial_row
from platform.spec.values import StoredDimension, levels
from platform.study.objective import _taken_by_another
from platform.study.summary import PointSummary, get_summary_info

DIST = {"window_size": CategoricalDistribution([3, 5, 7])}


def _trial(k: int, seed: int, state: TrialState, value: float | None = None, **attrs: Any) -> optuna.trial.FrozenTrial:
    user = {ATTR_POINT: f"window_size={k}", ATTR_SEED: seed, **attrs}
    return create_trial(state=state, value=value, params={"window_size": k}, distributions=DIST, user_attrs=user)


def _study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    sized = {ATTR_PARAMS: 1000, ATTR_FLOPS: 2000}
    for trial in [
        _trial(5, 0, TrialState.COMPLETE, 0.5, **sized, **{ATTR_THROUGHPUT: 10.0, ATTR_TEST: {METRIC_TEST_ACC: 0.4}}),
        _trial(5, 1, TrialState.COMPLETE, 0.7, **{ATTR_TEST: {METRIC_TEST_ACC: 0.6, METRIC_TEST_LOSS: 1.5}}),
        _trial(5, 1, TrialState.COMPLETE, 0.9),  # a seed that ran twice: the report averages it, the summary not
        _trial(3, 0, TrialState.PRUNED, None, **{ATTR_PRUNED_AT: 4}),
        _trial(3, 1, TrialState.FAIL, None, **{ATTR_FAIL: "out of memory"}),
        _trial(3, 2, TrialState.FAIL),  # a dead process, not a failure
        _trial(7, 0, TrialState.COMPLETE, 0.6, **{ATTR_SPURIOUS: True}),
    ]:
        study.add_trial(trial)
    study.enqueue_trial({"window_size": 7}, user_attrs={ATTR_POINT: "window_size=7", ATTR_SEED: 0})
    return study


def test_one_per_point_summary_for_the_report_and_the_terminal() -> None:
    study = _study()
    every = point_data(study.get_trials(deepcopy=False))
    assert [p.key for p in every] == ["window_size=5", "window_size=3", "window_size=7"]  # first appearance
    five, three, seven = every
    assert five.trial_values == (0.5, 0.7, 0.9) and five.values == {0: 0.5, 1: 0.8}
    assert (five.n_complete, five.params, five.flops, five.throughput, five.test_acc) == (3, 1000, 2000, 10.0, 0.5)
    assert (three.n_pruned, three.n_failed, three.pruned_at, three.values) == (1, 1, 4, {})
    assert seven.n_complete == 0  # only a queue entry: the summary lists it, the report does not
    assert [p.key for p in point_data(study.get_trials(deepcopy=False), started_only=True)] == [five.key, three.key]
    summary = get_summary_info(study)
    assert summary[0] == PointSummary("window_size=5", (0.5, 0.7, 0.9), 3, 0, 0, 1000, 2000)
    assert summary[1] == PointSummary("window_size=3", (), 0, 1, 1, None, None)
    assert summary[2].mean is None and len(summary) == 3
    spec = {"search": {"design": "grid", "parameters": {"window_size": {"type": "categorical",
                                                                        "choices": [3, 5, 7]}}}}
    ordered = point_info(study, study_info(study, spec))
    assert [p.key for p in ordered] == ["window_size=3", "window_size=5"]  # the spec's level order


def test_one_best_key_for_points_and_summary_rows() -> None:
    points = [PointData(key=k, level={}, raw_level={}, values=v) for k, v in
              [("a", {0: 0.5, 1: 0.6}), ("b", {0: 0.6}), ("c", {})]]
    assert best_key(points, "maximize") == "b" and best_key(points, "minimize") == "a"
    rows = [PointSummary(k, v, len(v), 0, 0, None, None) for k, v in [("a", (0.2, 0.3)), ("b", (0.3,)), ("c", ())]]
    assert best_key(rows, "maximize") == "b" and best_key(rows, "minimize") == "a"
    ties = [PointSummary(k, (0.5,), 1, 0, 0, None, None) for k in ("x", "y")]
    assert best_key(ties, "maximize") == "y" and best_key(ties, "minimize") == "x"  # the report's rule
    assert best_key([], "maximize") is None


def test_one_export_row_for_load_results_and_export() -> None:
    study = _study()
    first = study.get_trials(deepcopy=False)[1]
    row = trial_row(first, ["trial", "seed", "value", "value_2", "test_acc", "test_loss", "mlflow_status"],
                    {"mlflow_status": "FINISHED"})
    assert row == {"trial": 1, "seed": 1, "value": 0.7, "test_acc": 0.6, "test_loss": 1.5, "mlflow_status": "FINISHED"}
    assert list(row) == ["trial", "seed", "value", "test_acc", "test_loss", "mlflow_status"]  # value_2: 1 objective
    two = optuna.create_study(directions=["maximize", "minimize"])
    two.add_trial(create_trial(state=TrialState.COMPLETE, values=[0.9, 12.0], params={}, distributions={}))
    assert trial_row(two.get_trials()[0], ["value", "value_2"]) == {"value": 0.9, "value_2": 12.0}
    assert {"start", "complete", "spurious", "model_uri"} <= set(TRIAL_FIELDS)


def test_done_is_records_is_done_in_the_objective() -> None:
    study = _study()
    running = study.ask()  # trial 7 takes the queue entry of (window_size=7, seed 0)

    class Probe:  # what _taken_by_another reads of the optuna.Trial
        def __init__(self, number: int) -> None:
            self.number, self.study = number, study

    assert _taken_by_another(Probe(99), "window_size=5", 0)  # COMPLETE
    assert _taken_by_another(Probe(99), "window_size=3", 0)  # PRUNED
    assert _taken_by_another(Probe(99), "window_size=3", 1)  # FAIL with a reason
    assert not _taken_by_another(Probe(99), "window_size=3", 2)  # FAIL without one: runs again
    assert _taken_by_another(Probe(99), "window_size=7", 0) == (running.number < 99)  # RUNNING, lower number
    assert not _taken_by_another(Probe(0), "window_size=7", 0)  # RUNNING under a higher number
    assert not _taken_by_another(Probe(99), "window_size=7", 5)


def test_one_levels_function_for_the_spec_and_the_stored_spec() -> None:
    assert param_levels({"choices": [3, 5, 7]}) == ["3", "5", "7"]
    assert param_levels({"type": "int", "low": 1, "high": 7, "step": 3}) == ["1", "4", "7"]
    assert param_levels({"type": "float", "low": 0.1, "high": 1.0}) is None
    assert param_levels({"type": "categorical", "choices": [[1, 2], None, True]}) == ["1-2", "null", "true"]
    assert levels(StoredDimension.of({"type": "int", "low": 2, "high": 4})) == [2, 3, 4]
