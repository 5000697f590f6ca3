"""Adaptive seeds end to end with real tiny trials: the decision rounds add seeds only to undecided comparisons.

The design makes one verdict known without any trained value: with a conv-only backbone the window size changes
nothing (no attention layer uses it), so ``window_size=5,lr=0.05`` trains bit-for-bit like the reference
``window_size=3,lr=0.05`` — identical on every seed, equivalent (test ``identical``) at the first look, so it gets
no more seeds. ``lr=0.01`` trains differently, and a tiny ``effect`` (1e-4 nats of validation loss) keeps TOST
from ever showing equivalence: it gets one more seed for each round its paired t-test (checked here against
scipy on the stored values) stays undecided.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState
from rich.console import Console
from scipy import stats

from dashboards.verdicts import seeds_label
from platform.records import ATTR_POINT, ATTR_SEED, METRIC_ENQUEUED, ROLE_STUDY, STUDY_ROUNDS, STUDY_SPEC, TAG_ROLE
from platform.study.summary import get_summary_info, get_verdicts, render_summary
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec
from tests.support.limits import HANG_S

REF, SAME, NEAR = "window_size=3,lr=0.05", "window_size=5,lr=0.05", "window_size=3,lr=0.01"


@pytest.fixture(scope="module")
def adaptive_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp_path = tmp_path_factory.mktemp("adaptive")
    search = {
        "design": "grid", "parameters": {"window_size": [3, 5], "lr": [0.05, 0.01]},
        "points": [{"window_size": 3, "lr": 0.05}, {"window_size": 5, "lr": 0.05}, {"window_size": 3, "lr": 0.01}],
        "reference": {"window_size": 3, "lr": 0.05}, "seeds": {"min": 3, "max": 4}, "effect": 1e-4,
    }
    spec = tiny_spec("adaptive", model={"backbone": "conv"}, search=search,
                     objective={"metric": "val/loss", "direction": "minimize"})
    result = run_study(write_spec(tmp_path / "adaptive.yaml", spec), tmp_path, forked=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path, result


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="adaptive", storage=stores(tmp_path)[0])


def test_seeds_added_only_to_the_undecided_comparison(adaptive_study) -> None:
    tmp_path, _ = adaptive_study
    trials = _study(tmp_path).get_trials()
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    pairs = [(t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in trials]
    assert len(pairs) == len(set(pairs))  # exactly once per (design point, seed)
    seeds = {point: sorted(s for p, s in pairs if p == point) for point in (REF, SAME, NEAR)}
    assert seeds[SAME] == [0, 1, 2]  # identical to the reference: decided at the first look, no more seeds
    values = {(p, s): t.value for (p, s), t in zip(pairs, trials, strict=True)}
    assert all(values[(SAME, s)] == values[(REF, s)] for s in range(3))
    rounds = _study(tmp_path).user_attrs[STUDY_ROUNDS]
    first = rounds[0]["verdicts"][NEAR]
    expected_p = stats.ttest_rel([values[(NEAR, s)] for s in range(3)], [values[(REF, s)] for s in range(3)]).pvalue
    assert first["p"] == pytest.approx(expected_p)
    undecided = first["p"] >= first["p_threshold"]  # TOST cannot decide: |Δ| is far above the 1e-4 effect
    assert undecided  # this design's data (else nothing below would test the enqueueing)
    assert seeds[NEAR] == seeds[REF] == [0, 1, 2, 3]  # undecided: one more seed per round, up to max


def test_each_round_is_recorded_on_the_study_and_the_parent_run(adaptive_study) -> None:
    tmp_path, _ = adaptive_study
    rounds = _study(tmp_path).user_attrs[STUDY_ROUNDS]
    assert [r["round"] for r in rounds] == [1, 2]
    assert [r["enqueued"] for r in rounds] == [{REF: 3, NEAR: 3}, {}]
    assert (rounds[0]["verdicts"][SAME]["verdict"], rounds[0]["verdicts"][SAME]["test"]) == ("equivalent", "identical")
    assert "identical on every seed" in rounds[0]["verdicts"][SAME]["note"]
    assert [r["verdicts"][NEAR]["verdict"] for r in rounds] == ["undecided"] * 2
    assert rounds[-1]["verdicts"][NEAR]["done"] and "max seeds" in rounds[-1]["verdicts"][NEAR]["note"]
    client = MlflowClient(tracking_uri=stores(tmp_path)[1])
    experiment = client.get_experiment_by_name("adaptive")
    parent = next(r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get(TAG_ROLE) == ROLE_STUDY)
    history = client.get_metric_history(parent.info.run_id, METRIC_ENQUEUED)
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 0.0)]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "decisions")}
    assert artifacts == {f"decisions/round-0{n}.json" for n in (1, 2)}


def test_report_and_summary_show_verdicts_and_seeds_needed(adaptive_study) -> None:
    tmp_path, _ = adaptive_study
    study = _study(tmp_path)
    console = Console(width=250, record=True)
    found = get_verdicts(study, study.user_attrs[STUDY_SPEC])
    render_summary(get_summary_info(study), metric="val/loss", direction="minimize", console=console, found=found)
    text = console.export_text()
    assert "seeds needed" in text and "equivalent (identical)" in text and "undecided" in text
    table = (tmp_path / "runs" / "reports" / "adaptive" / "table.md").read_text()
    assert "seeds needed" in table and "Δ vs ref [95 % CI]" in table
    same_row = next(line for line in table.splitlines() if line.startswith(f"| {SAME} "))
    assert "| equivalent |" in same_row and "| identical |" in same_row
    near_row = next(line for line in table.splitlines() if line.startswith(f"| {NEAR} "))
    assert "| undecided |" in near_row


def test_dry_run_of_a_stored_study_shows_the_seeds_needed(adaptive_study) -> None:
    tmp_path, _ = adaptive_study
    result = run_study(tmp_path / "adaptive.yaml", tmp_path, "--dry-run", timeout=HANG_S, env_vars={"COLUMNS": "250"},
                       forked=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stored study: comparisons so far" in result.stdout and "seeds needed" in result.stdout
    near = next(line for line in result.stdout.splitlines() if NEAR in line and "undecided" in line)
    study = _study(tmp_path)
    expected = get_verdicts(study, study.user_attrs[STUDY_SPEC])[NEAR].seeds_needed
    assert near.split("│")[-2].strip() == seeds_label(expected) != "—"
