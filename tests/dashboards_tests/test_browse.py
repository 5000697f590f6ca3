"""``python -m dashboards --list / --export STUDY / --compare A B``: what they show, and that they write nothing to
either store (the stores' full SQL dumps and artifact trees are compared before and after)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from dashboards.__main__ import main
from platform.records import ATTR_POINT, ATTR_SEED
from tests.dashboards_tests.stored import Stores, add_study, make_stores, resolved_spec

GRID = {"design": "grid", "parameters": {"window_size": [3, 5, 7]}, "seeds": [0, 1], "reference": {"window_size": 7}}
WINDOW = {(3,): {0: 0.70, 1: 0.72}, (5,): {0: 0.80, 1: 0.83}, (7,): {0: 0.90, 1: 0.92}}
WINDOW_B = {(3,): {0: 0.60, 1: 0.62}, (7,): {0: 0.95, 1: 0.97}}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    st = make_stores(tmp_path_factory.mktemp("browse") / "runs")
    add_study(st, resolved_spec("window", search=GRID), WINDOW, extra_states={(5,): (1, 1)})
    add_study(st, resolved_spec("window_b", search=GRID), WINDOW_B)
    study = optuna.load_study(study_name="window_b", storage=st.storage)
    study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={ATTR_POINT: "window_size=5",
                                                                                   ATTR_SEED: 0}))
    return st


def _contents(st: Stores) -> tuple[list[str], list[str], list[str]]:
    """Everything the stores hold: both databases' SQL dumps and the artifact files."""
    dumps = []
    for uri in (st.storage, st.tracking):
        with closing(sqlite3.connect(uri.removeprefix("sqlite:///"))) as connection:
            dumps.append(list(connection.iterdump()))
    artifacts = sorted(str(p.relative_to(st.root)) for p in (st.root / "mlartifacts").rglob("*"))
    return dumps[0], dumps[1], artifacts


def _args(st: Stores, *extra: str) -> list[str]:
    return [*extra, "--storage", st.storage, "--tracking-uri", st.tracking]


def test_list_shows_every_study(stores: Stores, capsys: pytest.CaptureFixture) -> None:
    before = _contents(stores)
    assert main(_args(stores, "--list")) == 0
    out = capsys.readouterr().out
    assert _contents(stores) == before
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
             if line.startswith("| window")}
    # study, design, done of planned, pruned/failed, running, best by mean (with its verdict), last update; the
    # pruned and failed trials of window_size=5 ran stray seeds (100, 101): not progress of the plan
    assert lines["window"][1:6] == ["grid", "6 of 6", "1/1", "0", "window_size=7: val/acc 0.9100 over 2 seeds, "
                                    "reference"]
    assert lines["window_b"][1:6] == ["grid", "4 of 6", "0/0", "1", "window_size=7: val/acc 0.9600 over 2 seeds, "
                                      "reference"]
    assert lines["window"][6][:2] == "20"  # a date


def test_list_counts_adaptive_seeds_as_a_range_and_names_the_best_mean(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """Adaptive seeds {min: 2, max: 4} on 3 points: 6 of 6–12 pairs; the best is the best mean over seeds, not the
    best single trial (window_size=5 has the best trial, 0.99, but window_size=7 the best mean)."""
    st = make_stores(tmp_path / "runs")
    adaptive = {**GRID, "seeds": {"min": 2, "max": 4}, "effect": 0.02}
    add_study(st, resolved_spec("adaptive", search=adaptive),
              {(3,): {0: 0.70, 1: 0.71}, (5,): {0: 0.99, 1: 0.60}, (7,): {0: 0.90, 1: 0.92}})
    assert main(_args(st, "--list")) == 0
    out = capsys.readouterr().out
    assert "| done of planned |" in out and "| best by mean |" in out
    (line,) = [[c.strip() for c in row.split("|")[1:-1]] for row in out.splitlines() if row.startswith("| adaptive")]
    assert line[2] == "6 of 6–12"
    assert line[5].startswith("window_size=7: val/acc 0.9100 over 2 seeds, ")
    assert line[5].split(", ")[-1] == "reference"


def test_export_joins_trials_with_mlflow_runs(stores: Stores, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = _contents(stores)
    assert main(_args(stores, "--export", "window", "--out", str(tmp_path))) == 0
    assert _contents(stores) == before
    frame = pd.read_parquet(tmp_path / "window-trials.parquet")
    from_csv = pd.read_csv(tmp_path / "window-trials.csv")
    assert len(frame) == len(from_csv) == 8  # 6 complete + 1 pruned + 1 failed
    assert list(frame["trial"]) == list(range(8))
    complete = frame[frame["state"] == "COMPLETE"]
    assert sorted(complete["value"]) == sorted(v for per in WINDOW.values() for v in per.values())
    assert (complete["mlflow_status"] == "FINISHED").all()
    # the MLflow side of the join: each run's name names its own design point and seed, its last val/acc is the value
    for _, row in complete.iterrows():
        assert row["mlflow_run_name"].endswith(f" {row['design_point']} seed={row['seed']}")  # export columns
        assert row["metric:val/acc"] == pytest.approx(row["value"])
    assert set(frame.loc[frame["state"] != "COMPLETE", "state"]) == {"PRUNED", "FAIL"}
    assert "exported 8 trials" in capsys.readouterr().out


def test_compare_puts_two_tables_side_by_side(stores: Stores, capsys: pytest.CaptureFixture) -> None:
    before = _contents(stores)
    assert main(_args(stores, "--compare", "window", "window_b")) == 0
    assert _contents(stores) == before
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| window_size")}
    assert rows["window_size=3"][0] == "0.7100 ± 0.0141" and rows["window_size=3"][3] == "0.6100 ± 0.0141"
    assert rows["window_size=5"][3:] == ["—", "0/0/0", "no data"]  # window_b's one trial of it is still running
    assert rows["window_size=7"][2] == "reference" and rows["window_size=7"][5] == "reference"


def test_bad_use_exits_2_with_one_line(stores: Stores, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_args(stores, "--compare", "window", "nosuch")) == 2
    assert capsys.readouterr().err.strip() == (f"error: no study named 'nosuch' in {stores.storage}; studies there: "
                                              "window, window_b")
    assert main(_args(stores, "--list", "--export", "window")) == 2
    assert "--list goes alone" in capsys.readouterr().err
    missing = f"sqlite:///{tmp_path / 'none' / 'optuna.db'}"
    assert main(["--list", "--storage", missing, "--tracking-uri", stores.tracking]) == 2
    assert not (tmp_path / "none").exists()  # a read-only view never creates a store
