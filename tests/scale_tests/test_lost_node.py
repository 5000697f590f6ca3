"""A lost node mid-trial (issue 23, item 6): one worker of a two-worker study on PostgreSQL is SIGKILLed together
with its whole process group — the worker and its children, every process of it at once, as losing its node does —
while the other worker and the main process carry on.

Each worker runs in its own process group (``platform/study/workers.py``), so killing that group takes nothing else.
On a cluster the lost worker ran on another machine: no process on the surviving hosts can see by its pid that it
is gone, only its heartbeat stops. The test makes that so on one machine by recording the victim trial's worker as
another host's just before the kill (the study's same-host pid check cannot see it then; Optuna's heartbeat must).
The same command must then, without a rerun: fail the lost trial as an infrastructure failure (``ATTR_INFRA_FAIL``
naming the lost node, never ``ATTR_FAIL``), close its MLflow run FAILED with that reason, run its (design point,
seed) again exactly once — on the surviving worker, resuming from the lost trial's last checkpoint — and finish with
every pair COMPLETE exactly once in Optuna and in MLflow, nothing RUNNING. The events waited for: a running trial's
saved checkpoint, the heartbeat's grace period (40 s: Optuna's, not a delay of the test), the command's exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import (
    ATTR_EPOCHS_RUN,
    ATTR_FAIL,
    ATTR_INFRA_FAIL,
    ATTR_POINT,
    ATTR_RESUMED_FROM,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_WORKER,
    TAG_FAIL,
)
from tests.platform_tests.studyrun import REPO, env, study_cmd, tiny_spec, write_spec
from tests.scale_tests.accounting import (
    assert_complete_exactly_once,
    assert_nothing_left_running,
    assert_trials_match_runs,
    load_trials,
    mlflow_runs,
    real,
    split_runs,
)
from tests.scale_tests.nodes import kill_session, trial_with_checkpoint
from tests.scale_tests.outages import restartable_mlflow, wait_until
from tests.scale_tests.postgres import PostgresServer

NAME = "lost_node"
EPOCHS = 3
SEEDS = (0, 1, 2)
EXPECTED = {("window_size=3", seed) for seed in SEEDS}
OTHER_HOST = "node-c.cluster.invalid"
WAIT_S = 900


def test_a_lost_worker_node_is_failed_as_infrastructure_and_its_pair_runs_again_once(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    storage = postgres.create_database("lost_node_optuna")
    spec = tiny_spec(NAME, train={"epochs": EPOCHS, "limit_train_batches": 6},
                     search={"design": "grid", "parameters": {"window_size": [3]}, "seeds": list(SEEDS)})
    spec_path = write_spec(tmp_path / f"{NAME}.yaml", spec)
    log = tmp_path / "study.log"
    trial_root = tmp_path / "runs" / "trials" / NAME
    with restartable_mlflow(tmp_path / "mlflow") as server:
        code, victim, pid = _lose_a_node(spec_path, tmp_path, storage, server.uri, trial_root, log)
        _assert_lost_and_run_again(storage, server.uri, code, victim, pid, log.read_text())


def _lose_a_node(spec_path: Path, tmp_path: Path, storage: str, tracking: str, trial_root: Path,
                 log: Path) -> tuple[int, optuna.trial.FrozenTrial, int]:
    """Run the study with two workers, lose one worker's node mid-trial; (exit code, lost trial, its worker's pid)."""
    cmd = study_cmd(spec_path, tmp_path, "--workers", "2", "--storage", storage, "--tracking-uri", tracking)
    with log.open("w") as handle:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        victim = wait_until(lambda: trial_with_checkpoint(load_trials(storage, NAME), trial_root, EPOCHS),
                            what="a running trial with a saved epoch", alive=lambda: proc.poll() is None,
                            limit_s=WAIT_S)
        pid = int(victim.user_attrs[ATTR_WORKER].rpartition(":")[2])
        assert pid != proc.pid, "the trial should run in a worker process, not in the main process"
        assert os.getpgid(pid) == pid != os.getpgid(proc.pid), "a worker should lead its own process group"
        study = optuna.load_study(study_name=NAME, storage=storage)
        study._storage.set_trial_user_attr(victim._trial_id, ATTR_WORKER, f"{OTHER_HOST}:{pid}")
        os.killpg(pid, signal.SIGKILL)  # the node is gone: the worker and its children, at once
        code = proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            kill_session(proc.pid)
            proc.wait()
    return code, victim, pid


def _assert_lost_and_run_again(storage: str, tracking: str, code: int, victim: optuna.trial.FrozenTrial, pid: int,
                               output: str) -> None:
    assert code == 0, output[-5000:]
    assert "Traceback" not in output, output[-5000:]
    assert "exited with signal 9" in output, output[-5000:]  # the supervisor saw its worker go

    trials = load_trials(storage, NAME)
    assert_complete_exactly_once(trials, EXPECTED)
    lost = {t.number: t for t in trials}[victim.number]
    assert lost.state == TrialState.FAIL
    assert ATTR_FAIL not in lost.user_attrs, "a lost node is not the trial's own failure"
    reason = lost.user_attrs.get(ATTR_INFRA_FAIL, "")
    assert reason.startswith("lost node: no heartbeat from") and OTHER_HOST in reason, lost.user_attrs
    failed = [t.number for t in real(trials) if t.state == TrialState.FAIL]
    assert failed == [victim.number], f"only the lost trial may fail (the others carried on): {failed}"

    pair = (victim.user_attrs[ATTR_POINT], victim.user_attrs[ATTR_SEED])
    again = [t for t in real(trials) if (t.user_attrs[ATTR_POINT], t.user_attrs[ATTR_SEED]) == pair
             and t.number != victim.number]
    assert [t.state for t in again] == [TrialState.COMPLETE], [(t.number, t.state) for t in again]
    assert str(again[0].user_attrs.get(ATTR_RESUMED_FROM)).endswith("last.ckpt"), again[0].user_attrs
    assert again[0].user_attrs[ATTR_EPOCHS_RUN] == EPOCHS
    assert again[0].user_attrs[ATTR_WORKER].rpartition(":")[2] != str(pid), "a surviving worker runs it again"

    client = MlflowClient(tracking_uri=tracking)
    runs = mlflow_runs(client, NAME)
    assert_nothing_left_running(trials, runs)
    parent, children = split_runs(runs)
    assert parent.info.status == "FINISHED"
    assert_trials_match_runs(trials, parent, children)
    lost_run = client.get_run(lost.user_attrs[ATTR_RUN])
    assert lost_run.info.status == "FAILED" and lost_run.data.tags.get(TAG_FAIL) == reason, lost_run.data.tags
