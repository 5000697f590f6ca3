"""Real stores for the dashboards tests: an Optuna study (SQLite) and MLflow runs (SQLite) written the way
``platform.study`` writes them (tests/platform_tests/studyrun.py, the storage contract), with known values."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from mlflow.entities import Metric
from optuna.trial import TrialState

from platform.records import (
    ATTR_BEST_VALUE,
    ATTR_FAIL,
    ATTR_FLOPS,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_PRUNED_AT,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_TEST,
    ATTR_THROUGHPUT,
    METRIC_TEST_ACC,
    METRIC_TEST_LOSS,
    METRIC_VAL_ACC,
    ROLE_STUDY,
    ROLE_TRIAL,
    STUDY_FINGERPRINT,
    STUDY_PARENT_RUN,
    STUDY_SPEC,
    TAG_COMMIT,
    TAG_PARENT,
    TAG_POINT,
    TAG_ROLE,
    TAG_SEED,
    TAG_STORAGE,
    TAG_STUDY,
    TAG_TRIAL,
)
from platform.spec import parse_spec
from tests.platform_tests.studyrun import tiny_spec


@dataclass(frozen=True)
class Stores:
    root: Path
    storage: str
    tracking: str


def make_stores(root: Path) -> Stores:
    root.mkdir(parents=True, exist_ok=True)
    return Stores(root, f"sqlite:///{root / 'optuna.db'}", f"sqlite:///{root / 'mlflow.db'}")


def resolved_spec(name: str, **sections: Any) -> dict[str, Any]:
    """The resolved spec dict as ``platform.study`` stores it (validated by the real ``parse_spec``)."""
    return parse_spec(tiny_spec(name, **sections)).resolved_dict()


def add_study(
    stores: Stores,
    spec: dict[str, Any],
    values: Mapping[tuple[Any, ...], Mapping[int, float]],
    *,
    extra_states: Mapping[tuple[Any, ...], tuple[int, int]] | None = None,
    cost: Mapping[tuple[Any, ...], tuple[int, int]] | None = None,
    epochs: int = 3,
) -> str:
    """Add a study: ``values[(level, ...)] = {seed: objective}``, one COMPLETE trial and one FINISHED child run
    (per-epoch ``val/acc`` rising to the value) per entry; ``extra_states[levels] = (pruned, failed)`` adds
    trials in those states. Returns the parent run id."""
    name = spec["name"]
    names = list(spec["search"]["parameters"])
    directions = [spec["objective"]["direction"]] + (["minimize"] if spec["objective"].get("second") else [])
    study = optuna.create_study(study_name=name, storage=stores.storage, directions=directions)
    client = MlflowClient(tracking_uri=stores.tracking)
    experiment = client.create_experiment(name, artifact_location=(stores.root / "mlartifacts" / name).as_uri())
    parent = client.create_run(experiment, run_name=name, tags={
        TAG_ROLE: ROLE_STUDY, TAG_STUDY: name, TAG_STORAGE: stores.storage, TAG_COMMIT: "x"})
    parent_id = parent.info.run_id
    client.set_terminated(parent_id, "FINISHED")
    study.set_user_attr(STUDY_SPEC, spec)
    study.set_user_attr(STUDY_FINGERPRINT, "test")
    study.set_user_attr(STUDY_PARENT_RUN, parent_id)
    distributions = {
        n: optuna.distributions.CategoricalDistribution(spec["search"]["parameters"][n]["choices"]) for n in names
    }
    number = 0
    for levels, per_seed in values.items():
        params = dict(zip(names, levels, strict=True))
        key = ",".join(f"{n}={v}" for n, v in params.items())
        n_params, flops = (cost or {}).get(levels, (1000 + 10 * number, 2_000_000 + 1000 * number))
        for seed, value in per_seed.items():
            run = client.create_run(experiment, run_name=f"{number:03d} {key} seed={seed}", tags={
                TAG_ROLE: ROLE_TRIAL, TAG_STUDY: name, TAG_TRIAL: str(number),
                TAG_POINT: key, TAG_SEED: str(seed), TAG_COMMIT: "x",
                TAG_PARENT: parent_id})
            now = int(time.time() * 1000)
            history = [Metric(METRIC_VAL_ACC, value * (e + 1) / epochs, now, e) for e in range(epochs)]
            client.log_batch(run.info.run_id, metrics=history)
            client.set_terminated(run.info.run_id, "FINISHED")
            objective_values = [value] + ([float(n_params)] if len(directions) > 1 else [])
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.COMPLETE, values=objective_values, params=params, distributions=distributions,
                user_attrs={ATTR_POINT: key, ATTR_SEED: seed, ATTR_PARAMS: n_params, ATTR_FLOPS: flops,
                            ATTR_THROUGHPUT: 500.0 + seed,
                            ATTR_TEST: {METRIC_TEST_ACC: value - 0.01, METRIC_TEST_LOSS: 0.5},
                            ATTR_RUN: run.info.run_id, ATTR_BEST_VALUE: value}))
            number += 1
        pruned, failed = (extra_states or {}).get(levels, (0, 0))
        for i in range(pruned + failed):
            state = TrialState.PRUNED if i < pruned else TrialState.FAIL
            attrs: dict[str, Any] = {ATTR_POINT: key, ATTR_SEED: 100 + i}
            if state == TrialState.PRUNED:
                attrs[ATTR_PRUNED_AT] = 2
            if state == TrialState.FAIL:
                attrs[ATTR_FAIL] = "FloatingPointError: val/acc was never finite"
            study.add_trial(optuna.trial.create_trial(state=state, params=params, distributions=distributions,
                                                      user_attrs=attrs))
    return parent_id
