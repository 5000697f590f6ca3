"""Optuna's own dashboard on our studies: ``optuna-dashboard`` (pinned in the dev extra) serves the storage the
study runner made, and its JSON API lists each study with its objectives named (``study.set_metric_names``)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import optuna

from platform.records import METRIC_VAL_ACC, METRIC_VAL_LOSS
from platform.spec import parse_spec
from platform.stores import open_storage
from platform.study.lifecycle import open_study
from tests.platform_tests.studyrun import tiny_spec
from tests.support.servers import optuna_dashboard


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_optuna_dashboard_lists_studies_with_named_objectives(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = open_storage(url)
    one, _ = open_study(parse_spec(tiny_spec("dash_one")), storage, fresh=False)
    two_spec = tiny_spec("dash_two", objective={"metric": "val/loss", "direction": "minimize", "second": "params"},
                         pruner={"type": "none"}, search={"design": "nsga2", "n_trials": 4})
    two, _ = open_study(parse_spec(two_spec), storage, fresh=False)
    assert one.metric_names == [METRIC_VAL_ACC] and two.metric_names == [METRIC_VAL_LOSS, "params"]
    # the names survive loading the study again, as the dashboard does
    assert optuna.load_study(study_name="dash_two", storage=url).metric_names == [METRIC_VAL_LOSS, "params"]

    with optuna_dashboard(url, tmp_path / "optuna-dashboard.log") as base:
        studies = {s["study_name"]: s for s in _get(f"{base}/api/studies")["study_summaries"]}
        assert set(studies) == {"dash_one", "dash_two"}
        assert studies["dash_two"]["directions"] == ["minimize", "minimize"]
        detail_one = _get(f"{base}/api/studies/{studies['dash_one']['study_id']}")
        detail_two = _get(f"{base}/api/studies/{studies['dash_two']['study_id']}")
    assert detail_one["name"] == "dash_one" and detail_one["objective_names"] == [METRIC_VAL_ACC]
    assert detail_two["objective_names"] == [METRIC_VAL_LOSS, "params"]
