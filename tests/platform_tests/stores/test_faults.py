"""The two kinds of failure (``records``' rule, ``stores.faults``' classifier) and the preflight that leaves MLflow's
retry settings alone. The infrastructure's failures are real ones: a refused MLflow request, a refused PostgreSQL
connection, a full disk's ``OSError``; the genuine ones are what a trial raises itself."""

from __future__ import annotations

import concurrent.futures
import errno
import math
import multiprocessing
import os
import socket
import threading

import fsspec
import optuna
import pytest
import sqlalchemy
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from platform.records import (
    ATTR_FAIL,
    ATTR_INFRA_FAIL,
    ATTR_POINT,
    ATTR_SEED,
    is_done,
    is_genuine_failure,
    is_infrastructure_failure,
)
from platform.stores.connect import StoreError, check_tracking
from platform.stores.faults import (
    MLFLOW_RETRIES_VAR,
    MLFLOW_TIMEOUT_VAR,
    InfrastructureError,
    StoreOutageError,
    fast_fail_mlflow,
    infrastructure_cause,
    infrastructure_first,
    is_no_space,
    no_space_note,
)
from platform.stores.patience import Patience
from tests.scale_tests.outages import fill, small_filesystem
from tests.support.network import free_port


def _refused_mlflow() -> MlflowException:
    with fast_fail_mlflow(timeout_s=5), pytest.raises(MlflowException) as caught:
        MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}").get_run("0" * 32)
    return caught.value


def _refused_database() -> Exception:
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://u:p@127.0.0.1:{free_port()}/db",
                                      connect_args={"connect_timeout": 5})
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
        engine.connect()
    return caught.value


def _in_optuna(exc: Exception) -> Exception:
    """As Optuna's RDB storage re-raises a failed commit: its own error, the driver's as the cause."""
    try:
        raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
    except optuna.exceptions.StorageInternalError as wrapped:
        return wrapped


def _disk_full(tmp_path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "trial" / "last.ckpt"))


def _refused_socket() -> ConnectionRefusedError:
    """A real refused TCP connection, raised where a network client raises it (the ``socket`` module)."""
    with pytest.raises(ConnectionRefusedError) as caught:
        socket.create_connection(("127.0.0.1", free_port()), timeout=5)
    return caught.value


def test_infrastructure_failures_are_recognised(tmp_path) -> None:
    for exc in (_refused_mlflow(), _refused_database(), _in_optuna(_refused_database()), _disk_full(tmp_path),
                _refused_socket(), StoreOutageError("the store", 301, "down")):
        assert infrastructure_cause(exc) is not None, repr(exc)
    note = no_space_note(_disk_full(tmp_path))
    assert note is not None and str(tmp_path / "trial" / "last.ckpt") in note and "MiB free" in note


def _full_sqlite(tmp_path, name: str = "full.db") -> Exception:
    """A real SQLite database that cannot grow (its page limit reached): SQLITE_FULL, with no errno."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / name}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x BLOB)")
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught, engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA max_page_count = 3")
        connection.exec_driver_sql("INSERT INTO t VALUES (zeroblob(100000))")
    engine.dispose()
    return caught.value


def test_a_full_database_is_no_space_not_an_outage(tmp_path) -> None:
    import psycopg2.errors

    for exc in (_full_sqlite(tmp_path), _in_optuna(_full_sqlite(tmp_path, 'full2.db')),
                psycopg2.errors.DiskFull("could not extend file: No space left on device")):
        assert is_no_space(exc), repr(exc)
        assert infrastructure_cause(exc).startswith("infrastructure: no space left for the database ("), repr(exc)
        attempts: list[int] = []

        def full(exc: Exception = exc, attempts: list[int] = attempts) -> None:
            attempts.append(1)
            raise exc

        with pytest.raises(type(exc)):
            Patience("the test store", budget_s=60, say=lambda line: None).call(full)
        assert attempts == [1], "waiting frees no space: a full database is not retried"
    assert not is_no_space(_refused_database())


def test_a_full_database_behind_a_librarys_own_error_stops_the_study_cleanly(tmp_path) -> None:
    stopped = pytest.raises(InfrastructureError, match=r"^no space left for the database \(database or disk is full\)$")
    with stopped, infrastructure_first():
        try:
            raise _full_sqlite(tmp_path)
        except Exception:  # as Optuna's tell cleans up after a failed storage call: the full disk is the context
            raise UnboundLocalError("cannot access local variable 'updated_state'")  # noqa: B904


def test_a_trials_own_failures_are_genuine() -> None:
    net = torch.nn.Linear(3, 2)
    with pytest.raises(RuntimeError) as shape:
        net(torch.zeros(1, 5))
    genuine = [shape.value, FloatingPointError("val/acc was never finite"), ValueError("window_size must be odd"),
               torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
               MlflowException("Invalid value nan for metric 'val/acc'"), ZeroDivisionError(math.pi)]
    for exc in genuine:
        assert infrastructure_cause(exc) is None, repr(exc)


def test_pythons_connection_and_timeout_errors_are_genuine_unless_a_network_client_raised_them() -> None:
    """A compile pool's future timing out or a pipe of the trial's own processes is the trial's failure: taken for
    the infrastructure's, its pair would never settle and every rerun would stop on it again."""
    never = threading.Event()  # set only after the future timed out: the wait is for an event, not a delay
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with pytest.raises(TimeoutError) as timed_out:
            pool.submit(never.wait).result(timeout=0.01)
        never.set()
    reader, writer = multiprocessing.Pipe(duplex=False)
    reader.close()
    with pytest.raises(BrokenPipeError) as broken:
        writer.send(b"x" * 100_000)
    writer.close()
    for exc in (timed_out.value, broken.value):
        assert infrastructure_cause(exc) is None, repr(exc)
        try:  # the trial's own failure with Python's error in its chain stays genuine too
            raise RuntimeError("DataLoader worker exited unexpectedly") from exc
        except RuntimeError as wrapped:
            assert infrastructure_cause(wrapped) is None, repr(wrapped)
    assert infrastructure_cause(_refused_socket()) is not None


def _fail(number: int, **attrs) -> optuna.trial.FrozenTrial:
    trial = create_trial(state=TrialState.FAIL, params={"w": 3}, distributions={"w": CategoricalDistribution([3])},
                         user_attrs={ATTR_POINT: "window_size=3", ATTR_SEED: number, **attrs})
    return trial


def test_only_a_genuine_failure_settles_its_pair() -> None:
    genuine = _fail(0, **{ATTR_FAIL: "FloatingPointError: nan"})
    infra = _fail(1, **{ATTR_INFRA_FAIL: "infrastructure: ConnectionRefusedError"})
    dead = _fail(2)  # a dead process's trial: no reason at all
    assert is_genuine_failure(genuine) and is_done(genuine) and not is_infrastructure_failure(genuine)
    assert is_infrastructure_failure(infra) and not is_genuine_failure(infra) and not is_done(infra)
    assert not is_done(dead) and not is_genuine_failure(dead) and not is_infrastructure_failure(dead)
    both = _fail(3, **{ATTR_FAIL: "x", ATTR_INFRA_FAIL: "infrastructure: y"})
    assert not is_done(both), "an infrastructure failure never settles a pair, whatever else the trial says"


def test_the_preflight_fails_fast_and_leaves_mlflow_retries_alone(monkeypatch) -> None:
    for name in (MLFLOW_RETRIES_VAR, MLFLOW_TIMEOUT_VAR):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(StoreError, match="unreachable"):
        check_tracking(f"http://127.0.0.1:{free_port()}")
    assert MLFLOW_RETRIES_VAR not in os.environ and MLFLOW_TIMEOUT_VAR not in os.environ
    monkeypatch.setenv(MLFLOW_RETRIES_VAR, "9")
    with pytest.raises(StoreError):
        check_tracking(f"http://127.0.0.1:{free_port()}")
    assert os.environ[MLFLOW_RETRIES_VAR] == "9", "a user's own setting is restored"


def test_a_full_disk_met_by_a_move_names_the_destination_not_the_source(tmp_path) -> None:
    """Lightning writes a checkpoint through an fsspec transaction: into a temporary file under /tmp, then moved onto
    the runs folder. When that folder's disk is full, the error names the temporary file first; the note must name
    the full destination (a CI run once reported the /tmp file, with its 50 GiB free)."""
    with small_filesystem(tmp_path / "runs", 1) as runs:
        (runs / "trial").mkdir()
        fill(runs)
        target = runs / "trial" / "last.ckpt"
        fs = fsspec.filesystem("file")
        with pytest.raises(OSError) as caught, fs.transaction, fs.open(str(target), "wb") as handle:
            handle.write(os.urandom(1 << 16))
        assert caught.value.filename2 is not None and not str(caught.value.filename).startswith(str(runs))
        note = no_space_note(caught.value, tmp_path)
        assert note is not None and note.startswith(f"no space left on {target}") and "MiB free" in note, note
        assert is_no_space(caught.value)
