"""Cluster stores: Optuna on a real PostgreSQL server, MLflow behind ``mlflow server --app-name basic-auth``.

The node-death test runs a two-worker study against both servers, kills the whole command with SIGKILL while
trials run, and makes their trials look like they belonged to another machine whose heartbeat stopped an hour
ago (the process check cannot see other hosts; Optuna's heartbeat must). The rerun fails those trials, closes
their MLflow runs FAILED, runs their (design point, seed) again and finishes with every pair done once. A node
that dies while another node's one-worker command is still running must be taken over by that command. No
password — the database's or the tracking server's — may appear in a run's params, tags, the spec artifact, the
study's attributes or the printed output. Unreachable or refusing stores are one line and exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import optuna
import psycopg2
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import (
    ATTR_RUN,
    ATTR_SEED,
    ATTR_WORKER,
    ROLE_TRIAL,
    STUDY_PARENT_RUN,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STORAGE,
    TAG_TRIAL,
)
from platform.stores import open_storage
from tests.platform_tests.studyrun import REPO, env, study_cmd, tiny_spec, write_spec
from tests.scale_tests.accounting import (
    assert_complete_exactly_once,
    assert_nothing_left_running,
    assert_secret_absent,
    assert_trials_match_runs,
    load_trials,
    mlflow_runs,
    split_runs,
)
from tests.scale_tests.conftest import TrackingServer
from tests.scale_tests.nodes import kill_session
from tests.scale_tests.postgres import PostgresServer
from tests.support.limits import HANG_S
from tests.support.network import free_port

NAME = "cluster"
OTHER_HOST = "node-b.cluster.invalid:4242"
WAIT_S = HANG_S  # a hang detector (tests/support/limits.py), not a speed bound


def _run(cmd: list[str], extra_env: dict[str, str], timeout: float = WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env={**env(), **extra_env}, capture_output=True, text=True,
                          timeout=timeout)


def _running_count(postgres: PostgresServer, database: str) -> int:
    """RUNNING trials, read with plain SQL (opening an Optuna storage here could race the command's schema setup)."""
    conn = psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, password=postgres.password,
                            dbname=database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass('public.trial_user_attributes') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute("SELECT count(*) FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                           "WHERE t.state = 'RUNNING' AND a.key = 'mlflow_run_id'")
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


def _wait_for_running(postgres: PostgresServer, database: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study ended before it could be killed"
        if _running_count(postgres, database):
            return
        time.sleep(0.5)
    raise AssertionError("no trial started in time")


def _age_heartbeats(postgres: PostgresServer, database: str, trial_ids: list[int]) -> None:
    """Move these trials' last heartbeat an hour back: their machine looks dead (grace period: 40 s)."""
    conn = psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, password=postgres.password,
                            dbname=database)
    with conn, conn.cursor() as cursor:
        cursor.execute("UPDATE trial_heartbeats SET heartbeat = heartbeat - interval '1 hour' "
                       "WHERE trial_id = ANY(%s)", (trial_ids,))
        assert cursor.rowcount == len(trial_ids), "every running trial should have a heartbeat"
    conn.close()


def _as_dead_node(postgres: PostgresServer, database: str, storage: str) -> list[int]:
    """Make every RUNNING trial look like another machine's whose heartbeat stopped an hour ago."""
    study = optuna.load_study(study_name=NAME, storage=storage)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        study._storage.set_trial_user_attr(trial._trial_id, "worker", OTHER_HOST)
    _age_heartbeats(postgres, database, [t._trial_id for t in running])
    return [t.number for t in running]


@pytest.fixture(scope="module")
def node_death(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, tracking_server: TrackingServer):
    tmp = tmp_path_factory.mktemp(NAME)
    storage = postgres.create_database("cluster_optuna")
    spec = tiny_spec(
        NAME,
        search={"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0, 1]},
        storage=storage,  # in the YAML: it must not leak from there either
        tracking=tracking_server.uri,
    )
    spec_path = write_spec(tmp / f"{NAME}.yaml", spec)
    first_log = tmp / "first.log"
    with first_log.open("w") as handle:
        proc = subprocess.Popen(study_cmd(spec_path, tmp, "--workers", "2"), cwd=REPO,
                                env={**env(), **tracking_server.env()}, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_for_running(postgres, "cluster_optuna", proc)
        kill_session(proc.pid)  # the whole command: main process and both workers (each in its own group)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            kill_session(proc.pid)
            proc.wait()
    before = {t.number: (t.state, t.value) for t in load_trials(storage, NAME)}
    dead = _as_dead_node(postgres, "cluster_optuna", storage)
    # The rerun is another machine's single-worker command; --storage on the command line, not in the YAML.
    rerun = _run(study_cmd(spec_path, tmp, "--workers", "1", "--storage", storage), tracking_server.env())
    return storage, dead, before, first_log.read_text(), rerun


def test_trials_of_a_dead_node_are_failed_and_run_again(node_death, tracking_server: TrackingServer) -> None:
    storage, dead, before, _, rerun = node_death
    assert dead, "the kill should have caught a trial running"
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-5000:]
    trials = load_trials(storage, NAME)
    assert_complete_exactly_once(trials, {("window_size=3", 0), ("window_size=3", 1)})
    by_number = {t.number: t for t in trials}
    for number in dead:
        assert by_number[number].state == TrialState.FAIL
    for number, (state, value) in before.items():  # results finished before the kill are kept as they were
        if state == TrialState.COMPLETE:
            assert (by_number[number].state, by_number[number].value) == (state, value)

    client = MlflowClient(tracking_uri=tracking_server.uri)
    runs = mlflow_runs(client, NAME)
    assert_nothing_left_running(trials, runs)
    parent, children = split_runs(runs)
    assert parent.info.status == "FINISHED"
    assert_trials_match_runs(trials, parent, children)
    statuses = {r.info.run_id: r.info.status for r in children}
    # (a trial killed between creating its run and recording the run's id has no id: its run is checked above)
    killed_runs = [by_number[n].user_attrs[ATTR_RUN] for n in dead if ATTR_RUN in by_number[n].user_attrs]
    assert killed_runs and {statuses[run_id] for run_id in killed_runs} == {"FAILED"}


def test_no_password_anywhere(node_death, postgres: PostgresServer, tracking_server: TrackingServer) -> None:
    storage, _, _, first_output, rerun = node_death
    client = MlflowClient(tracking_uri=tracking_server.uri)
    runs = mlflow_runs(client, NAME)
    parent, _ = split_runs(runs)
    assert parent.data.tags[TAG_STORAGE] == postgres.url("cluster_optuna").replace(postgres.password, "***")
    study_attrs = json.dumps(optuna.load_study(study_name=NAME, storage=storage).user_attrs, default=str)
    for secret in (postgres.password, tracking_server.password):
        assert_secret_absent(secret, client, runs, first_output, rerun.stdout, rerun.stderr, study_attrs)


def test_a_running_single_worker_command_takes_over_a_dead_nodes_trial(
    tmp_path: Path, postgres: PostgresServer, tracking_server: TrackingServer
) -> None:
    """Node A dies holding a trial while node B's one-worker command runs: B retries it before it finishes."""
    name, database = "takeover", "takeover_optuna"
    storage = postgres.create_database(database)
    spec = tiny_spec(name, search={"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0, 1, 2]})
    spec_path = write_spec(tmp_path / f"{name}.yaml", spec)
    log = tmp_path / "b.log"
    cmd = study_cmd(spec_path, tmp_path, "--workers", "1", "--storage", storage, "--tracking-uri", tracking_server.uri)
    with log.open("w") as handle:
        node_b = subprocess.Popen(cmd, cwd=REPO, env={**env(), **tracking_server.env()}, stdout=handle,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_running(postgres, database, node_b)
        # Node A takes the next waiting (design point, seed), opens its MLflow run, beats once, and dies.
        study = optuna.load_study(study_name=name, storage=storage)
        taken = study.ask()
        assert ATTR_SEED in taken.user_attrs, "node A should have taken an enqueued design point"
        client = MlflowClient(tracking_uri=tracking_server.uri)
        parent = study.user_attrs[STUDY_PARENT_RUN]
        run = client.create_run(client.get_run(parent).info.experiment_id, run_name="node A", tags={
            TAG_ROLE: ROLE_TRIAL, TAG_PARENT: parent, TAG_TRIAL: str(taken.number)})
        taken.set_user_attr(ATTR_WORKER, OTHER_HOST)
        taken.set_user_attr(ATTR_RUN, run.info.run_id)
        study._storage.record_heartbeat(taken._trial_id)
        _age_heartbeats(postgres, database, [taken._trial_id])
        code = node_b.wait(timeout=WAIT_S)
    finally:
        if node_b.poll() is None:
            kill_session(node_b.pid)
            node_b.wait()
    output = log.read_text()
    assert code == 0, output[-5000:]
    trials = load_trials(storage, name)
    assert_complete_exactly_once(trials, {("window_size=3", 0), ("window_size=3", 1), ("window_size=3", 2)})
    assert {t.number: t.state for t in trials}[taken.number] == TrialState.FAIL
    runs = mlflow_runs(client, name)
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert_nothing_left_running(trials, runs)


def test_a_bare_postgresql_url_opens_the_storage(postgres: PostgresServer) -> None:
    """``postgresql://`` (no driver) is what users type and the README shows; the installed driver must serve it."""
    url = postgres.create_database("bare_url").replace("postgresql+psycopg2://", "postgresql://")
    storage = open_storage(url)
    optuna.create_study(study_name="bare", storage=storage)
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["bare"]


def _assert_one_line_exit_2(result: subprocess.CompletedProcess, *secrets: str) -> str:
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-3000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for secret in secrets:
        assert secret not in result.stdout + result.stderr
    return errors[0]


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg2"])
def test_unreachable_storage_is_one_line_without_the_password(tmp_path: Path, driver: str) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny_spec("unreachable"))
    url = f"{driver}://sasa:s3cret-pw@127.0.0.1:{free_port()}/optuna"
    line = _assert_one_line_exit_2(_run(study_cmd(spec, tmp_path, "--storage", url), {}, 300), "s3cret-pw")
    assert "--storage" in line and "refused" in line.lower(), line


def test_wrong_database_password_is_one_line_without_either_password(tmp_path: Path, postgres: PostgresServer) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny_spec("wrong_db_pw"))
    url = postgres.url("postgres").replace(postgres.password, "not-the-pw-77")
    result = _run(study_cmd(spec, tmp_path, "--storage", url), {}, 300)
    line = _assert_one_line_exit_2(result, "not-the-pw-77", postgres.password)
    assert "password authentication failed" in line, line


def test_unreachable_tracking_server_is_one_line(tmp_path: Path, tracking_server: TrackingServer) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny_spec("no_tracking"))
    uri = f"http://127.0.0.1:{free_port()}"
    line = _assert_one_line_exit_2(_run(study_cmd(spec, tmp_path, "--tracking-uri", uri), tracking_server.env(), 300),
                                   tracking_server.password)
    assert "--tracking-uri" in line, line


def test_refused_tracking_login_is_one_line_without_the_password(tmp_path: Path,
                                                                 tracking_server: TrackingServer) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny_spec("bad_login"))
    creds = {**tracking_server.env(), "MLFLOW_TRACKING_PASSWORD": "wrong-tracking-pw-1"}
    result = _run(study_cmd(spec, tmp_path, "--tracking-uri", tracking_server.uri), creds, 300)
    line = _assert_one_line_exit_2(result, "wrong-tracking-pw-1", tracking_server.password)
    assert "--tracking-uri" in line, line
    assert any(word in line.lower() for word in ("401", "unauthorized", "credentials", "permission")), line
