"""``python -m dashboards`` on stores written by the real study runner, checked against the Optuna trials directly.

The expected numbers are computed here from the trials' own values (``trial.value`` per seed, user attributes), with
the textbook formulas (mean, sample std, t-interval, paired t-test by seed via scipy), not with ``dashboards`` code.
"""

from __future__ import annotations

import csv
import math
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from platform.records import (
    ATTR_EXAMPLES,
    ATTR_FLOPS,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_SEED,
    ATTR_TEST,
    ATTR_THROUGHPUT,
    METRIC_TEST_ACC,
    ROLE_STUDY,
    ROLE_TRIAL,
    TAG_POINT,
    TAG_ROLE,
)
from tests.dashboards_tests.real_study import LEVELS, NAME, REFERENCE, SEEDS, RealStudy, real_study
from tests.platform_tests.studyrun import REPO, env
from tests.support.limits import HANG_S

REFERENCE_KEY = f"lr={REFERENCE:g}"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> RealStudy:
    return real_study(tmp_path_factory.getbasetemp())


def _dashboards(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "dashboards", *args], cwd=REPO, env=env(), capture_output=True,
                            text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def report(study: RealStudy, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The report of the study's YAML with the default stores under ``--runs-dir`` (logged to the parent run)."""
    out = tmp_path_factory.mktemp("real_report")
    result = _dashboards(str(study.spec_path), "--runs-dir", str(study.runs_dir), "--out", str(out))
    return out, result.stdout


def _by_point(study: RealStudy) -> dict[str, list[FrozenTrial]]:
    groups: dict[str, list[FrozenTrial]] = {}
    for trial in optuna.load_study(study_name=NAME, storage=study.storage).get_trials():
        groups.setdefault(trial.user_attrs[ATTR_POINT], []).append(trial)
    return groups


def _rows(table: Path) -> dict[str, dict[str, str]]:
    with table.open(newline="") as handle:
        return {row["design_point"]: row for row in csv.DictReader(handle)}  # table.csv column


def _seed_values(trials: list[FrozenTrial]) -> dict[int, float]:
    return {t.user_attrs[ATTR_SEED]: t.value for t in trials if t.state == TrialState.COMPLETE}


def test_table_rows_match_the_optuna_trials(study: RealStudy, report: tuple[Path, str]) -> None:
    out, stdout = report
    groups = _by_point(study)
    rows = _rows(out / "table.csv")
    assert sorted(rows) == sorted(groups) == sorted(f"lr={level:g}" for level in (0.02, 0.05))
    reference = _seed_values(groups[REFERENCE_KEY])
    for key, trials in groups.items():
        row = rows[key]
        values = _seed_values(trials)
        assert sorted(values) == SEEDS and all(t.state == TrialState.COMPLETE for t in trials)
        mean, std, n = statistics.fmean(values.values()), statistics.stdev(values.values()), len(values)
        half = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
        assert int(row["n_seeds"]) == n == int(row["n_complete"])
        assert (int(row["n_pruned"]), int(row["n_failed"])) == (0, 0)
        assert float(row["mean"]) == pytest.approx(mean, abs=1e-12)
        assert float(row["std"]) == pytest.approx(std, abs=1e-12)
        assert float(row["ci_low"]) == pytest.approx(mean - half, abs=1e-9)
        assert float(row["ci_high"]) == pytest.approx(mean + half, abs=1e-9)
        assert int(row["params"]) == trials[0].user_attrs[ATTR_PARAMS]
        assert int(row["flops"]) == trials[0].user_attrs[ATTR_FLOPS]
        assert float(row["throughput"]) == pytest.approx(
            statistics.fmean(t.user_attrs[ATTR_THROUGHPUT] for t in trials))
        assert float(row["test_acc"]) == pytest.approx(statistics.fmean(t.user_attrs[ATTR_TEST][METRIC_TEST_ACC]
                                                                        for t in trials))
        assert row["reference"] == REFERENCE_KEY
        # The terminal table carries the same mean ± std.
        assert f"| {key} | {mean:.4f} ± {std:.4f} |" in stdout
        if key == REFERENCE_KEY:
            assert row["verdict"] == "reference"
            continue
        diffs = [values[s] - reference[s] for s in SEEDS]  # paired by seed
        assert int(row["n_pairs"]) == len(SEEDS)
        assert float(row["diff"]) == pytest.approx(statistics.fmean(diffs), abs=1e-12)
        expected_p = stats.ttest_rel([values[s] for s in SEEDS], [reference[s] for s in SEEDS]).pvalue
        if math.isfinite(expected_p):
            assert float(row["p"]) == pytest.approx(expected_p)
            assert float(row["p_holm"]) == pytest.approx(expected_p)  # one comparison: Holm changes nothing


def test_study_name_with_explicit_stores_gives_the_same_table(study: RealStudy, report: tuple[Path, str],
                                                              tmp_path: Path) -> None:
    _dashboards(NAME, "--storage", study.storage, "--tracking-uri", study.tracking, "--out", str(tmp_path),
                "--no-log")
    assert (tmp_path / "table.csv").read_text() == (report[0] / "table.csv").read_text()
    # The runner's own end-of-study report (same stores, same code path) agrees too.
    assert (study.runs_dir / "reports" / NAME / "table.csv").read_text() == (tmp_path / "table.csv").read_text()


def test_report_logged_to_the_real_parent_run(study: RealStudy, report: tuple[Path, str]) -> None:
    client = MlflowClient(tracking_uri=study.tracking)
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_STUDY]
    assert len(parents) == 1
    parent = client.get_run(parents[0].info.run_id)
    assert "report/report.html" in [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    for key, trials in _by_point(study).items():
        metric = f"report/{key.replace('=', '_')}/mean"
        assert parent.data.metrics[metric] == pytest.approx(statistics.fmean(_seed_values(trials).values()))
    children = {r.data.tags[TAG_POINT] for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_TRIAL}
    assert children == set(_by_point(study))


def test_a_yaml_that_differs_from_the_stored_spec_reports_what_the_study_ran(study: RealStudy, tmp_path: Path) -> None:
    """As after ``python -m platform.study X.yaml --set ...``: the file no longer says what the study ran (other
    seeds, an effect, another reference). The report still uses the stored spec: the same table.md as the one the
    runner wrote at the end of the study, and it says that the file differs."""
    changed = yaml.safe_load(study.spec_path.read_text())
    changed["search"] = {**changed["search"], "seeds": {"min": 2, "max": 4}, "effect": 0.02,
                         "reference": {"lr": LEVELS[0]}}
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    out = tmp_path / "out"
    result = _dashboards(str(path), "--runs-dir", str(study.runs_dir), "--out", str(out))
    assert (out / "table.md").read_text() == (study.runs_dir / "reports" / NAME / "table.md").read_text()
    note = next(line for line in result.stdout.splitlines() if "differs from the spec" in line)
    assert "search.effect" in note and "search.reference" in note and "search.seeds" in note


def test_trials_record_the_examples_their_accuracy_counts(study: RealStudy) -> None:
    """val/acc is k of the validation examples Lightning evaluated (limit_val_batches=2 × batch 32 here): the
    recorded count is the one the report's ties are judged at (1/N)."""
    for trials in _by_point(study).values():
        for trial in trials:
            examples = trial.user_attrs[ATTR_EXAMPLES]
            assert examples["val"] == 64 and examples["test"] > 64
            count = trial.value * examples["val"]
            assert abs(count - round(count)) < 1e-3
            test_count = trial.user_attrs[ATTR_TEST][METRIC_TEST_ACC] * examples["test"]
            assert abs(test_count - round(test_count)) < 1e-3
