"""Where people look after a study: the log of a run nobody watched (a file, CI, SLURM: one plain line per trial,
no progress-bar escape codes, then the summary), the MLflow experiment and parent run descriptions, the table
artifact, readable child run names, and optuna-dashboard's study note — from one real tiny study."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna_dashboard import get_note

from platform.records import (
    ATTR_BEST_EPOCH,
    ATTR_MODEL_URI,
    ATTR_POINT,
    ATTR_SEED,
    ATTR_TEST,
    ROLE_STUDY,
    ROLE_TRIAL,
    TABLE_ARTIFACT,
    TAG_NOTE,
    TAG_RESULTS_DIGEST,
    TAG_ROLE,
)
from tests.platform_tests.studyrun import REPO, run_study, stores, study_cmd, tiny_spec, write_spec
from tests.support.limits import HANG_S


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("logged")
    spec = write_spec(tmp / "logged.yaml", tiny_spec(
        "logged", description="does a bigger window help? (tiny)",
        search={"design": "grid", "parameters": {"window_size": [3, 5]}, "seeds": [0, 1], "effect": 0.02,
                "reference": {"window_size": 3}}, train={"epochs": 2}))
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "FORCE_COLOR", "TTY_COMPATIBLE")}
    log = tmp / "study.log"
    with log.open("w") as handle:  # stdout and stderr to one file, as `cmd > log 2>&1` or a SLURM job
        code = subprocess.run(study_cmd(spec, tmp), cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                              env={**env, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}, timeout=HANG_S).returncode
    text = log.read_text()
    assert code == 0, text
    return tmp, text


def test_study_logged_to_a_file_writes_one_line_per_trial(logged: tuple[Path, str]) -> None:
    _, text = logged
    assert "\x1b" not in text and "\r" not in text, repr(text[:2000])
    before_summary = text.split("ran for ")[0].splitlines()
    trial_lines = [line for line in before_summary if line.startswith("trial #")]
    assert [line.split(":")[0] for line in trial_lines] == [
        "trial #0 window_size=3 seed=0", "trial #1 window_size=3 seed=1", "trial #2 window_size=5 seed=0",
        "trial #3 window_size=5 seed=1"], text
    assert trial_lines[-1].endswith("[4/4 done]"), text
    assert len(before_summary) <= 3 * 4, text  # at most 3 lines per trial before the summary
    summary = text.split("ran for ")[1]
    assert max(len(line) for line in summary.splitlines()) <= 80 or "browse the runs" in summary
    assert "k=3" in summary and "k=5" in summary and "reference" in summary and "Best " in summary


def test_mlflow_and_optuna_dashboard_hold_the_answer(logged: tuple[Path, str]) -> None:
    tmp, _ = logged
    storage, tracking = stores(tmp)
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("logged")
    note = experiment.tags[TAG_NOTE]  # the experiment's description, from the spec
    assert note.startswith("**logged** — does a bigger window help? (tiny)")
    assert "- parameter `window_size`: [3, 5]" in note and "seeds: [0, 1], effect ±0.02" in note
    assert f"#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning" in note

    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags[TAG_ROLE] == ROLE_STUDY]
    table = parent.data.tags[TAG_NOTE]  # the parent run's description: the ablation table
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("| design point"))
    assert "verdict" in header and "Δ vs ref [95 % CI]" in header
    rows = {line.split(" | ")[0].strip("| *"): line for line in lines if line.startswith("| ") and "=" in line}
    assert set(rows) == {"window_size=3", "window_size=5"}
    assert "| reference |" in rows["window_size=3"]
    assert any(word in rows["window_size=5"] for word in ("better", "worse", "equivalent", "undecided"))
    assert "report/report.html" in table and f"#/experiments/{experiment.experiment_id}/runs/" in table

    artifact = client.download_artifacts(parent.info.run_id, TABLE_ARTIFACT, str(tmp / "dl"))
    logged_table = json.loads(Path(artifact).read_text())
    assert "design point" in logged_table["columns"] and "verdict" in logged_table["columns"]
    assert sorted(row[logged_table["columns"].index("design point")] for row in logged_table["data"]) == [
        "window_size=3", "window_size=5"]

    children = {r.info.run_name for r in runs if r.data.tags[TAG_ROLE] == ROLE_TRIAL}
    assert children == {"k=3 seed=0 #0", "k=3 seed=1 #1", "k=5 seed=0 #2", "k=5 seed=1 #3"}

    study = optuna.load_study(study_name="logged", storage=storage)
    assert get_note(study).startswith("**Ablation table**") and "window_size=5" in get_note(study)
    for trial in study.trials:
        assert {ATTR_POINT, ATTR_SEED} <= set(trial.user_attrs)


def _note_version(study: optuna.Study) -> int:
    """optuna-dashboard's version counter of the study note (each save_note adds one)."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return next(v for k, v in attrs.items() if k.startswith("dashboard:note_ver"))


def _table_points(client: MlflowClient, run_id: str, folder: Path) -> list[str]:
    table = json.loads(Path(client.download_artifacts(run_id, TABLE_ARTIFACT, str(folder))).read_text())
    return sorted(row[table["columns"].index("design point")] for row in table["data"])


def test_every_logged_model_carries_its_trials_value(logged: tuple[Path, str]) -> None:
    """The model page, the registry and load_results agree with the run: each trial's logged model carries the
    val/acc of its best epoch (the trial's value) and its test metrics, at that epoch."""
    tmp, _ = logged
    storage, tracking = stores(tmp)
    client = MlflowClient(tracking_uri=tracking)
    study = optuna.load_study(study_name="logged", storage=storage)
    for trial in study.trials:
        model = client.get_logged_model(trial.user_attrs[ATTR_MODEL_URI].removeprefix("models:/"))
        by_key = {m.key: (m.value, m.step) for m in model.metrics}
        epoch = trial.user_attrs[ATTR_BEST_EPOCH]
        assert by_key["val/acc"] == (pytest.approx(trial.value), epoch), (trial.number, by_key)
        for key, value in trial.user_attrs[ATTR_TEST].items():
            assert by_key[key] == (pytest.approx(value), epoch), (trial.number, key, by_key)


def test_the_end_of_study_step_publishes_once_per_change(logged: tuple[Path, str]) -> None:
    """Rerunning the finished study publishes nothing again (same results); forced to publish again, the table
    artifact is replaced (one row per design point, not appended) and the unchanged note keeps its version."""
    tmp, _ = logged
    storage, tracking = stores(tmp)
    client = MlflowClient(tracking_uri=tracking)
    study = optuna.load_study(study_name="logged", storage=storage)
    (parent,) = client.search_runs([client.get_experiment_by_name("logged").experiment_id],
                                   filter_string=f"tags.`{TAG_ROLE}` = '{ROLE_STUDY}'")
    run_id, version = parent.info.run_id, _note_version(study)
    assert parent.data.tags[TAG_RESULTS_DIGEST] and version == 1
    spec = tmp / "logged.yaml"
    again = run_study(spec, tmp, env_vars={"COLUMNS": "80"}, forked=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "results unchanged since it was published" in " ".join(again.stdout.split()), again.stdout
    client.delete_tag(run_id, TAG_RESULTS_DIGEST)  # as if the results had changed: the step runs again
    forced = run_study(spec, tmp, env_vars={"COLUMNS": "80"}, forked=True)
    assert forced.returncode == 0 and "results unchanged" not in " ".join(forced.stdout.split()), forced.stdout
    assert _table_points(client, run_id, tmp / "dl-again") == ["window_size=3", "window_size=5"]
    assert _note_version(optuna.load_study(study_name="logged", storage=storage)) == version
    assert client.get_run(run_id).data.tags[TAG_RESULTS_DIGEST] == parent.data.tags[TAG_RESULTS_DIGEST]
