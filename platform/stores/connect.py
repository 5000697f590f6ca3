"""Opening the stores: the Optuna storage (heartbeats, patient SQLite, patient through outages) and a fail-fast MLflow
reachability check (MLflow's retries are off for that one call only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.storages import RDBStorage
from sqlalchemy import event

from .faults import fast_fail_mlflow
from .patience import DEFAULT_BUDGET_S, Patience
from .patient_storage import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, PatientStorage
from .redaction import redact
from .sqlite_files import MLFLOW, OPTUNA, read_only_url, sqlite_path, store_problem


class StoreError(Exception):
    """A store cannot be reached or opened (reported as one line, exit code 2)."""


def _serialise_sqlite_writes(storage: RDBStorage) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE``.

    Optuna claims a WAITING trial with ``SELECT ... FOR UPDATE``, which SQLite ignores, so two workers could
    pop the same enqueued trial and train it twice (optuna/optuna#4002). Taking the write lock when a
    transaction begins serialises the claims (the others wait, up to the 60 s busy timeout).
    """
    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are dropped


def open_storage(url: str, *, outage_budget_s: float = DEFAULT_BUDGET_S) -> RDBStorage:
    """Optuna RDB storage with heartbeats (stale trials of dead workers are detected) and a patient SQLite.

    Opening it fails fast (:class:`StoreError`); once open, its calls wait out a database outage of up to
    ``outage_budget_s`` (:mod:`.patient_storage`)."""
    if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy 2.1 defaults to psycopg 3; we ship psycopg2
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    engine_kwargs: dict = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        storage = PatientStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=GRACE_PERIOD_S,
        )
    except Exception as exc:  # sqlalchemy / driver errors vary by backend
        raise StoreError(f"--storage {redact(url)}: cannot open the Optuna storage ({_first_line(exc)})") from exc
    if url.startswith("sqlite"):
        _serialise_sqlite_writes(storage)
    storage.patience = Patience(f"the Optuna storage {redact(url)}", budget_s=outage_budget_s)
    return storage



def _require_store(url: str, path: Path, kind: str, option: str) -> None:
    """A read-only command's SQLite store must exist and hold ``kind``'s tables (never created, never filled)."""
    if not path.is_file():
        raise StoreError(f"{option} {redact(url)}: no such database file ({path}); run a study first or pass the "
                         f"right {option}")
    problem = store_problem(url, kind, option, empty_ok=False)
    if problem:
        raise StoreError(problem)

def open_storage_read_only(url: str) -> RDBStorage:
    """The Optuna storage for reading only: a SQLite file must exist and hold Optuna's tables, and is opened with
    SQLite's ``mode=ro`` (no schema, heartbeat or row can be written)."""
    path = sqlite_path(url)
    if path is not None:
        _require_store(url, path, OPTUNA, "--storage")
        url = read_only_url(url)
    elif url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    try:
        return RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}} if path else {
            "pool_pre_ping": True, "connect_args": {"connect_timeout": 10}})
    except Exception as exc:  # a SQLite file without Optuna's tables, a server that does not answer, ...
        raise StoreError(f"--storage {redact(url)}: cannot open the Optuna storage read-only "
                         f"({_first_line(exc)})") from exc


def _no_folder_for_uri_files() -> None:
    """MLflow makes the parent folder of a SQLite path before it connects; for a read-only ``file:`` URI that
    "parent" would be a folder named ``file:`` in the working directory. Skip it for those URIs only."""
    from mlflow.store.db import utils  # late: only read-only commands patch it, once

    original = getattr(utils, "_make_parent_dirs_if_sqlite", None)
    if original is None or getattr(original, "sasa_read_only", False):
        return

    def make_parent_dirs(db_uri: str) -> None:
        if not db_uri.startswith("sqlite:///file:"):
            original(db_uri)

    make_parent_dirs.sasa_read_only = True  # type: ignore[attr-defined]
    utils._make_parent_dirs_if_sqlite = make_parent_dirs


def read_only_client(uri: str) -> MlflowClient:
    """An ``MlflowClient`` that only reads: a SQLite tracking store must exist and hold MLflow's current tables,
    and is opened with SQLite's ``mode=ro``. Other stores (servers) are checked for reachability."""
    path = sqlite_path(uri)
    if path is None:
        check_tracking(uri)
        return MlflowClient(tracking_uri=uri)
    _require_store(uri, path, MLFLOW, "--tracking-uri")
    _no_folder_for_uri_files()
    ro = read_only_url(uri)
    try:
        client = MlflowClient(tracking_uri=ro, registry_uri=ro)
        client.search_experiments(max_results=1)
    except Exception as exc:
        raise StoreError(f"--tracking-uri {redact(uri)}: MLflow cannot read it ({_first_line(exc)})") from exc
    return client


def build_optuna_store(url: str) -> None:
    """Make Optuna's tables in the (new) SQLite file of ``url`` and close every connection."""
    storage = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    storage.engine.dispose()


def build_mlflow_store(url: str, artifact_root: str) -> None:
    """Make MLflow's tables (and its Default experiment) in the (new) SQLite file of ``url``; close it."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # late: only when a store is created

    store = SqlAlchemyStore(url, artifact_root)
    store.engine.dispose()
    SqlAlchemyStore._engine_map.pop(url, None)


def check_tracking(uri: str) -> None:
    """Fail fast (one try, a short timeout) when the MLflow tracking server/database is unreachable. MLflow's retry
    settings are changed for this call only: the rest of the process keeps its own (and rides out outages)."""
    try:
        with fast_fail_mlflow():
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:
        raise StoreError(f"--tracking-uri {redact(uri)}: MLflow is unreachable ({_first_line(exc)})") from exc


def study_exists(storage: RDBStorage, name: str) -> bool:
    return any(s.study_name == name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))


def _first_line(exc: BaseException) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return text.strip().splitlines()[0][:300]
