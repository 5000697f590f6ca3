"""Pins resume and the step-aside of a doubly-enqueued pair, on the killed sampled study of test_pinned_sampled.py.

Resume is proven from what the retried run *logged* (its MLflow metric history and its Optuna intermediate values):
a retry that restarted would log epoch 0 again at the full learning rate; one that resumed starts after the last
checkpointed epoch, on the cosine schedule where the killed run left it. The product's own ``resumed_from``
attribute is not consulted.
"""

from __future__ import annotations

import csv
import math
import re

import pytest
from optuna.trial import FrozenTrial, TrialState

from platform.records import (
    ATTR_ORIGIN,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_POINT_PRUNED,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_SPURIOUS,
    ATTR_WORKER,
    METRIC_LR,
    METRIC_VAL_ACC,
    ROLE_TRIAL,
    TAG_ROLE,
    TAG_TRIAL,
)
from tests.platform_tests.study.test_pinned_sampled import DONE, EPOCHS, NAME, Scenario, killed_sampled_study


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return killed_sampled_study(tmp_path_factory.getbasetemp())


def _pair(trial: FrozenTrial) -> tuple[str, int]:
    return trial.user_attrs[ATTR_POINT], trial.user_attrs[ATTR_SEED]


def _steps(scenario: Scenario, run_id: str, metric: str) -> dict[int, float]:
    return {m.step: m.value for m in scenario.client().get_metric_history(run_id, metric)}


def _retry_of_killed(scenario: Scenario) -> tuple[FrozenTrial, FrozenTrial]:
    trials = scenario.trials()
    killed = next(t for t in trials if t.number == scenario.killed)
    retry = next(t for t in trials
                 if _pair(t) == _pair(killed) and t.state in DONE and not t.user_attrs.get(ATTR_SPURIOUS))
    return killed, retry


def _cosine_lr(base: float, epoch: int) -> float:
    """The learning rate at the start of ``epoch`` (no warm-up, cosine per step; whole epochs of equal length)."""
    return base * 0.5 * (1 + math.cos(math.pi * epoch / EPOCHS))


def test_retried_run_continues_after_the_checkpointed_epoch(scenario: Scenario) -> None:
    killed, retry = _retry_of_killed(scenario)
    killed_val = _steps(scenario, killed.user_attrs[ATTR_RUN], METRIC_VAL_ACC)
    retry_run = retry.user_attrs[ATTR_RUN]
    retry_val = _steps(scenario, retry_run, METRIC_VAL_ACC)
    assert retry_run != killed.user_attrs[ATTR_RUN]

    # The killed run finished epoch 0 at least (it had checkpointed) and was killed before its last epoch.
    assert sorted(killed_val) == list(range(len(killed_val))) and 1 <= len(killed_val) < EPOCHS
    first = min(retry_val)
    # The retry did not start over: its first epoch follows one the killed run had finished, and it runs on
    # without a gap (to the last epoch, unless Hyperband pruned it).
    assert 1 <= first <= max(killed_val) + 1
    assert sorted(retry_val) == list(range(first, first + len(retry_val)))
    if retry.state == TrialState.COMPLETE:
        assert max(retry_val) == EPOCHS - 1
    # Optuna saw the same epochs: the pruner got reports for the resumed epochs only (its steps count epochs
    # trained, so epoch e is step e + 1).
    assert sorted(retry.intermediate_values) == [epoch + 1 for epoch in sorted(retry_val)]

    # The learning rate went on along the schedule instead of restarting at the base rate.
    base = float(scenario.client().get_run(retry_run).data.params["train.lr"])
    assert base == retry.params["lr"]
    retry_lr = _steps(scenario, retry_run, METRIC_LR)
    assert min(retry_lr) == first
    assert retry_lr[first] == pytest.approx(_cosine_lr(base, first), rel=1e-6) and retry_lr[first] < base
    killed_lr = _steps(scenario, killed.user_attrs[ATTR_RUN], METRIC_LR)
    assert killed_lr[0] == pytest.approx(base, rel=1e-6)
    if first in killed_lr:
        assert retry_lr[first] == pytest.approx(killed_lr[first], rel=1e-6)


def test_uninterrupted_trials_log_from_epoch_zero(scenario: Scenario) -> None:
    """The contrast to the resumed retry: every other trial that trained logs epochs 0, 1, ... without a gap."""
    killed, retry = _retry_of_killed(scenario)
    rest = [t for t in scenario.trials() if t.state in DONE and t.number not in (killed.number, retry.number)
            and not (t.user_attrs.get(ATTR_SPURIOUS) and not t.user_attrs.get(ATTR_POINT_PRUNED))]
    others = [t for t in rest if ATTR_RUN in t.user_attrs]
    # a seed whose design point was pruned steps aside without training (pruning respects seeds): no run
    assert len(others) + sum(1 for t in rest if t.user_attrs.get(ATTR_POINT_PRUNED)) == 3 and others
    for trial in others:
        steps = sorted(_steps(scenario, trial.user_attrs[ATTR_RUN], METRIC_VAL_ACC))
        assert steps == list(range(len(steps))) and steps, trial.number
        if trial.state == TrialState.COMPLETE:
            assert len(steps) == EPOCHS


def test_doubly_enqueued_pair_steps_aside_without_training(scenario: Scenario) -> None:
    trials = scenario.trials()
    duplicate = next(t for t in trials if t.number == scenario.duplicate)
    same_pair = [t for t in trials if _pair(t) == _pair(duplicate) and t.number != duplicate.number]
    assert len(same_pair) == 1
    original = same_pair[0]
    # The lower-numbered trial ran the pair; the duplicate was pruned as spurious and never trained or tracked.
    assert original.number < duplicate.number and original.state in DONE
    assert duplicate.state == TrialState.PRUNED and duplicate.user_attrs.get(ATTR_SPURIOUS) is True
    assert not duplicate.intermediate_values
    for attr in (ATTR_RUN, ATTR_WORKER, ATTR_PARAMS, ATTR_ORIGIN):
        assert attr not in duplicate.user_attrs, attr
    children = [r for r in scenario.runs() if r.data.tags.get(TAG_ROLE) == ROLE_TRIAL]
    assert str(duplicate.number) not in {r.data.tags[TAG_TRIAL] for r in children}
    real = [t for t in trials if not t.user_attrs.get(ATTR_SPURIOUS)]
    # 4 pairs + the killed attempt; none for the duplicate, none for a seed skipped because its design point was
    # pruned as a whole (it never trained)
    trained = [t for t in real if not t.user_attrs.get(ATTR_POINT_PRUNED)]
    assert len(real) == 5 and len(children) == len(trained)

    # Summary counts ignore it: the end-of-study report counts trials per design point from the stores.
    table = scenario.tmp_path / "runs" / "reports" / NAME / "table.csv"
    rows = {row["design_point"]: row for row in csv.DictReader(table.open())}  # table.csv column
    row = rows[duplicate.user_attrs[ATTR_POINT]]
    point_trials = [t for t in real if t.user_attrs[ATTR_POINT] == duplicate.user_attrs[ATTR_POINT]]
    assert int(row["n_complete"]) == sum(t.state == TrialState.COMPLETE for t in point_trials)
    assert int(row["n_pruned"]) == sum(t.state == TrialState.PRUNED for t in point_trials)
    assert int(row["n_failed"]) == 0  # the killed attempt was lost, not failed
    assert int(row["n_complete"]) + int(row["n_pruned"]) == 2
    # ... and so does the CLI's end-of-study table ("n (ok/pruned/failed)" column).
    key = re.escape(duplicate.user_attrs[ATTR_POINT])
    match = re.search(rf"│ {key} +│[^│]*│ +(\d+)/(\d+)/(\d+) │", scenario.rerun.stdout)
    assert match, scenario.rerun.stdout
    assert [int(n) for n in match.groups()] == [int(row["n_complete"]), int(row["n_pruned"]), 0]
