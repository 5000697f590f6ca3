"""The confirmation round of a sampled study, through the real CLI: the finalists re-run on fresh seeds (never a
search seed), once per (design point, seed), without pruning, and the finalists table ends the terminal output.
A rerun of the finished study trains nothing."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState
from optuna_dashboard import get_note

from platform.promote.__main__ import main as promote_main
from platform.promote.preference import RULE_CONFIRMED
from platform.records import (
    ATTR_ORIGIN,
    ATTR_POINT,
    ATTR_SEED,
    ATTR_SPURIOUS,
    STUDY_FINALISTS,
    STUDY_PARENT_RUN,
    TAG_NOTE,
    TAG_TRIAL,
    VERSION_PREFER,
    VERSION_RULE,
    is_confirmation,
)
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec

SEARCH = {"design": "random", "parameters": {"window_size": [3, 5, 7]}, "seeds": [0], "n_trials": 3,
          "effect": 0.05, "reference": {"window_size": 3},
          "confirm": {"finalists": 1, "seeds": {"min": 2, "max": 2}}}


def _trials(tmp_path: Path, name: str) -> tuple[optuna.Study, list[optuna.trial.FrozenTrial]]:
    storage, _ = stores(tmp_path)
    study = optuna.load_study(study_name=name, storage=storage)
    return study, [t for t in study.get_trials() if not t.user_attrs.get(ATTR_SPURIOUS)]


def test_a_sampled_study_ends_with_its_finalists_confirmed_on_fresh_seeds(tmp_path: Path, capsys) -> None:
    sections = {"model": {"backbone": "conv"}, "search": SEARCH, "train": {"epochs": 2},
                "pruner": {"type": "median", "warmup_epochs": 1}}
    spec = write_spec(tmp_path / "conf.yaml", tiny_spec("conf", **sections))
    result = run_study(spec, tmp_path, timeout=1800)  # 7 short trials; a loaded machine may take long
    assert result.returncode == 0, result.stdout + result.stderr
    study, trials = _trials(tmp_path, "conf")
    search = [t for t in trials if not is_confirmation(t)]
    confirm = [t for t in trials if is_confirmation(t)]
    assert sum(t.user_attrs.get(ATTR_ORIGIN) == "sampled" for t in search) == 3
    chosen = study.user_attrs[STUDY_FINALISTS]
    best_search = max((t for t in search if t.state == TrialState.COMPLETE and t.user_attrs[ATTR_POINT] !=
                       "window_size=3"), key=lambda t: (t.value, -t.number))
    assert [p["key"] for p in chosen["points"]] == [best_search.user_attrs[ATTR_POINT]]
    assert chosen["reference"]["key"] == "window_size=3"
    # every finalist and the reference on the fresh seeds 1 and 2, exactly once each, never pruned
    pairs = Counter((t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in confirm)
    assert pairs == Counter({(k, s): 1 for k in (best_search.user_attrs[ATTR_POINT], "window_size=3")
                             for s in (1, 2)}), pairs
    assert all(t.state == TrialState.COMPLETE for t in confirm)
    said = " ".join(result.stdout.split())
    assert "finalists: confirmation round on 2 fresh seeds" in said, result.stdout
    assert "confirmed winner:" in said and "biased)" in said and "tied within effect" in said, result.stdout
    assert "trials done: 7/7" in said, result.stdout
    # shown where the ablation table is shown: the HTML report, the parent run's description, optuna-dashboard
    html = (tmp_path / "runs" / "reports" / "conf" / "report.html").read_text()
    assert "Finalists: confirmation round on 2 fresh seeds" in html and "confirmed winner:" in html
    _, tracking = stores(tmp_path)
    parent = MlflowClient(tracking).get_run(study.user_attrs[STUDY_PARENT_RUN]).data.tags[TAG_NOTE]
    assert "**Finalists**" in parent and "(selected, biased)" in parent, parent
    assert "**Finalists**" in get_note(study)

    again = run_study(spec, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to run" in again.stdout, again.stdout
    assert len(_trials(tmp_path, "conf")[1]) == len(trials)

    # promotion registers the confirmed winner (best mean over its fresh seeds), not the search's best trial
    confirmed = {k: statistics.fmean(t.value for t in confirm if t.user_attrs[ATTR_POINT] == k)
                 for k in {t.user_attrs[ATTR_POINT] for t in confirm}}
    assert promote_main(["conf", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "notice:" not in out, out
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    version = client.get_model_version_by_alias("sasa-conf", "champion")
    promoted = next(t for t in trials if str(t.number) == version.tags[TAG_TRIAL])
    winner = promoted.user_attrs[ATTR_POINT]  # the best confirmed mean (a tie goes to the finalists table's winner)
    assert confirmed[winner] == max(confirmed.values()) and version.tags[VERSION_PREFER] == RULE_CONFIRMED
    rule = version.tags[VERSION_RULE]
    assert rule.startswith("search with a confirmation round") and f"confirmed winner: {winner}" in rule, rule
    assert "over 2 fresh seeds" in rule and rule in version.description, (rule, version.description)
