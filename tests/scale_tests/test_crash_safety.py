"""Crash safety with parallel workers: ``kill -9`` of one worker in the middle of a trial, and Ctrl-C.

Two workers, two trials of three epochs. Once one worker's trial has saved its first epoch, that worker is
killed with SIGKILL (a node dying does the same). The command must go on by itself: the killed trial is failed
as an infrastructure failure (a lost worker, never the trial's own), its MLflow run closed FAILED (never left
RUNNING), its (design point, seed) runs again — resuming from the saved epoch — and the other worker's result is
kept, not rerun. The same command exits 0 with every pair done once.

Each worker runs in its own process group, so a terminal's Ctrl-C (SIGINT to the command's foreground group)
reaches the workers only through the main process: it must, and the command must end with exit 130, no process of
it left behind and nothing RUNNING.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import (
    ATTR_EPOCHS_RUN,
    ATTR_FAIL,
    ATTR_INFRA_FAIL,
    ATTR_INTERRUPTED,
    ATTR_POINT,
    ATTR_RESUMED_FROM,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_WORKER,
)
from tests.platform_tests.studyrun import (
    REPO,
    env,
    start_study,
    stores,
    study_cmd,
    tiny_spec,
    wait_for_trials,
    write_spec,
)
from tests.scale_tests.accounting import (
    assert_complete_exactly_once,
    assert_nothing_left_running,
    assert_trials_match_runs,
    load_trials,
    mlflow_runs,
    real,
    split_runs,
)
from tests.scale_tests.nodes import kill_session, session_pids, trial_with_checkpoint
from tests.support.limits import HANG_S

NAME = "crash"
EPOCHS = 3
SPEC = tiny_spec(
    NAME,
    train={"epochs": EPOCHS, "limit_train_batches": 6},
    search={"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0, 1]},
)
WAIT_S = HANG_S  # a hang detector (tests/support/limits.py), not a speed bound


def _running_trial_with_checkpoint(tmp: Path, proc) -> optuna.trial.FrozenTrial:
    """Wait until a RUNNING trial has saved an epoch before its last; returns that trial."""
    storage, _ = stores(tmp)
    trial_root = tmp / "runs" / "trials" / NAME
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study ended before a worker could be killed"
        # Open the storage only once a checkpoint exists: the study exists then, and the test never races the
        # command to create the storage's tables.
        trials = load_trials(storage, NAME) if any(trial_root.glob("*/last.ckpt")) else []
        if (trial := trial_with_checkpoint(trials, trial_root, EPOCHS)) is not None:
            return trial
        time.sleep(0.3)
    raise AssertionError("no running trial saved a checkpoint in time")


@pytest.fixture(scope="module")
def killed_worker(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.trial.FrozenTrial, int, str]:
    """Run the study with 2 workers, SIGKILL one mid-trial; returns (tmp, killed trial, exit code, log)."""
    tmp = tmp_path_factory.mktemp(NAME)
    spec = write_spec(tmp / f"{NAME}.yaml", SPEC)
    log = tmp / "study.log"
    proc = start_study(spec, tmp, "--workers", "2", log=log)
    try:
        victim = _running_trial_with_checkpoint(tmp, proc)
        pid = int(victim.user_attrs[ATTR_WORKER].rpartition(":")[2])
        assert pid != proc.pid, "the trial should run in a worker process, not in the main process"
        os.kill(pid, signal.SIGKILL)
        code = proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return tmp, victim, code, log.read_text()


def test_the_same_command_finishes_the_study_after_a_worker_dies(killed_worker) -> None:
    tmp, _, code, output = killed_worker
    assert code == 0, output[-5000:]
    storage, tracking = stores(tmp)
    trials = load_trials(storage, NAME)
    assert_complete_exactly_once(trials, {("window_size=3", 0), ("window_size=3", 1)})
    client = MlflowClient(tracking_uri=tracking)
    runs = mlflow_runs(client, NAME)
    assert_nothing_left_running(trials, runs)
    parent, children = split_runs(runs)
    assert_trials_match_runs(trials, parent, children)


def test_the_killed_trial_is_failed_and_its_run_closed(killed_worker) -> None:
    tmp, victim, _, _ = killed_worker
    storage, tracking = stores(tmp)
    by_number = {t.number: t for t in load_trials(storage, NAME)}
    assert by_number[victim.number].state == TrialState.FAIL
    assert ATTR_FAIL not in by_number[victim.number].user_attrs  # a crash, not a genuine failure: retried
    assert by_number[victim.number].user_attrs[ATTR_INFRA_FAIL].startswith("lost worker: process ")
    run = MlflowClient(tracking_uri=tracking).get_run(victim.user_attrs[ATTR_RUN])
    assert run.info.status == "FAILED"
    assert run.info.end_time is not None


def test_the_retry_resumes_from_the_saved_epoch_and_the_other_result_is_kept(killed_worker) -> None:
    tmp, victim, _, _ = killed_worker
    storage, _ = stores(tmp)
    trials = real(load_trials(storage, NAME))
    pair = (victim.user_attrs[ATTR_POINT], victim.user_attrs[ATTR_SEED])
    retries = [t for t in trials if (t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) == pair
               and t.number != victim.number]
    assert [t.state for t in retries] == [TrialState.COMPLETE], [(t.number, t.state) for t in retries]
    resumed = retries[0].user_attrs.get(ATTR_RESUMED_FROM)
    assert resumed and resumed.endswith("last.ckpt"), retries[0].user_attrs
    assert retries[0].user_attrs[ATTR_EPOCHS_RUN] == EPOCHS
    others = [t for t in trials if (t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) != pair]
    assert [t.state for t in others] == [TrialState.COMPLETE]  # the survivor's trial ran once, never again
    assert others[0].user_attrs.get(ATTR_RESUMED_FROM) is None


def test_ctrl_c_reaches_every_worker_and_leaves_nothing_running(tmp_path: Path) -> None:
    name = "ctrl_c"
    spec = write_spec(tmp_path / f"{name}.yaml", tiny_spec(
        name, train={"epochs": EPOCHS, "limit_train_batches": 30},
        search={"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0, 1]}))
    log = tmp_path / "study.log"
    with log.open("w") as handle:  # its own session, as a terminal's job; SIGINT not ignored, as in a terminal
        proc = subprocess.Popen(study_cmd(spec, tmp_path, "--workers", "2"), cwd=REPO, env=env(), stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        running = wait_for_trials(tmp_path, name, proc, lambda trials: [
            t for t in trials if t.state == TrialState.RUNNING and ATTR_RUN in t.user_attrs] or None,
            what="a worker's running trial", timeout=WAIT_S)
        workers = [pid for pid in session_pids(proc.pid) if pid != proc.pid]
        assert workers and all(os.getpgid(pid) != proc.pid for pid in workers), "workers lead their own groups"
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the foreground group, the main process's only
        code = proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            kill_session(proc.pid)
            proc.wait()
    output = log.read_text()
    assert code == 130, output[-5000:]
    assert "Traceback" not in output, output[-5000:]
    assert not session_pids(proc.pid), "a worker (or its child) outlived the interrupted command"
    storage, tracking = stores(tmp_path)
    trials = load_trials(storage, name)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING], "a trial was left RUNNING"
    for trial in running:
        interrupted = {t.number: t for t in trials}[trial.number]
        assert interrupted.state == TrialState.FAIL and interrupted.user_attrs.get(ATTR_INTERRUPTED), trial.number
    runs = mlflow_runs(MlflowClient(tracking_uri=tracking), name)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"], "an MLflow run was left RUNNING"
