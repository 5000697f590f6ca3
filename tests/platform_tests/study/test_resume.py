"""Resume after interruption: a real study subprocess killed with SIGKILL or interrupted with SIGINT (Ctrl-C)."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from platform.records import ATTR_EPOCHS_RUN, ATTR_POINT, ATTR_RESUMED_FROM, ATTR_RUN, ATTR_SEED, TAG_ROLE
from tests.platform_tests.studyrun import run_study, start_study, stores, tiny_spec, wait_for_trials, write_spec
from tests.support.limits import HANG_S

SLOW_TRAIN = {"epochs": 8, "limit_train_batches": 8}


def _wait_for_running_trial(tmp_path: Path, name: str, proc, *, min_complete: int) -> int:
    """Poll until ``min_complete`` trials are COMPLETE and another has finished its first epoch; its number.

    "Finished its first epoch" = its ``last.ckpt`` exists: the process is then surely inside the trial (seven
    epochs to go), whatever the machine's speed, and the retry has a checkpoint to resume from.
    """

    def found(trials: list[FrozenTrial]) -> int | None:
        if sum(t.state == TrialState.COMPLETE for t in trials) < min_complete:
            return None
        for trial in trials:
            attrs = trial.user_attrs
            work_dir = tmp_path / "runs" / "trials" / name / f"{attrs.get(ATTR_POINT)}-seed{attrs.get(ATTR_SEED)}"
            if trial.state == TrialState.RUNNING and (work_dir / "last.ckpt").exists():
                return trial.number
        return None

    return wait_for_trials(tmp_path, name, proc, found, what="a running trial with a checkpoint")


def _retry_note(study: optuna.Study, number: int) -> str:
    """What the rerun says about the trial it retries (one of the tiny study's 4 pairs; the others may be done)."""
    attrs = study.get_trials()[number].user_attrs
    return (f"retrying 1 interrupted or lost trial: #{number} {attrs[ATTR_POINT]} seed={attrs[ATTR_SEED]}; ")


def _runs(tmp_path: Path, name: str) -> list:
    _, tracking = stores(tmp_path)
    client = MlflowClient(tracking_uri=tracking)
    return client.search_runs([client.get_experiment_by_name(name).experiment_id])


def _assert_complete_exactly_once(study: optuna.Study) -> None:
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    pairs = Counter((t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) for t in complete)
    assert sorted(pairs) == [("window_size=3", 0), ("window_size=3", 1), ("window_size=5", 0), ("window_size=5", 1)]
    assert set(pairs.values()) == {1}


def test_kill9_mid_trial_then_rerun_completes_exactly_once(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "killed.yaml", tiny_spec("killed", train=SLOW_TRAIN))
    proc = start_study(spec, tmp_path, log=tmp_path / "first.log")
    killed = _wait_for_running_trial(tmp_path, "killed", proc, min_complete=1)
    storage, _ = stores(tmp_path)
    first_complete = {
        t.number: t.value for t in optuna.load_study(study_name="killed", storage=storage).get_trials()
        if t.state == TrialState.COMPLETE
    }
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert any(r.info.status == "RUNNING" for r in _runs(tmp_path, "killed"))  # what kill -9 leaves behind

    result = run_study(spec, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "closed trials left RUNNING by a dead process" in result.stdout
    assert _retry_note(optuna.load_study(study_name="killed", storage=storage), killed) in result.stdout

    study = optuna.load_study(study_name="killed", storage=storage)
    _assert_complete_exactly_once(study)
    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[killed].state == TrialState.FAIL  # the killed attempt, retried under a new number
    for number, value in first_complete.items():  # completed results kept, not rerun
        assert by_number[number].state == TrialState.COMPLETE and by_number[number].value == value
    runs = _runs(tmp_path, "killed")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    killed_run = by_number[killed].user_attrs[ATTR_RUN]
    assert {r.info.run_id: r.info.status for r in runs}[killed_run] == "FAILED"
    # The retry of the killed (design point, seed) resumed from the checkpoint of its last finished epoch.
    pair = (by_number[killed].user_attrs[ATTR_POINT], by_number[killed].user_attrs[ATTR_SEED])
    retry = [t for t in study.get_trials() if t.state == TrialState.COMPLETE
             and (t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) == pair]
    assert retry[0].user_attrs[ATTR_RESUMED_FROM].endswith("last.ckpt")
    assert retry[0].user_attrs[ATTR_EPOCHS_RUN] == SLOW_TRAIN["epochs"]


def test_ctrl_c_leaves_nothing_running_and_rerun_resumes(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "interrupted.yaml", tiny_spec("interrupted", train=SLOW_TRAIN))
    proc = start_study(spec, tmp_path, log=tmp_path / "first.log")
    interrupted = _wait_for_running_trial(tmp_path, "interrupted", proc, min_complete=0)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=HANG_S) == 130, (tmp_path / "first.log").read_text()

    storage, _ = stores(tmp_path)
    trial = optuna.load_study(study_name="interrupted", storage=storage).get_trials()[interrupted]
    assert trial.state == TrialState.FAIL
    runs = _runs(tmp_path, "interrupted")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    statuses = {r.data.tags[TAG_ROLE]: r.info.status for r in runs}
    assert statuses == {"study": "KILLED", "trial": "FAILED"}

    result = run_study(spec, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    study = optuna.load_study(study_name="interrupted", storage=storage)
    _assert_complete_exactly_once(study)
    assert _retry_note(study, interrupted) in result.stdout, result.stdout
    assert {r.info.status for r in _runs(tmp_path, "interrupted")} == {"FINISHED", "FAILED"}
