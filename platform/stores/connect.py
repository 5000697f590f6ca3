"""Opening the stores: the Optuna storage (heartbeats, patient SQLite) and a fail-fast MLflow reachability check."""

from __future__ import annotations

import os
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.storages import RDBStorage
from sqlalchemy import event

from .redaction import redact

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 40


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


def open_storage(url: str) -> RDBStorage:
    """Optuna RDB storage with heartbeats (stale trials of dead workers are detected) and a patient SQLite."""
    if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy 2.1 defaults to psycopg 3; we ship psycopg2
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    engine_kwargs: dict = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        storage = RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=GRACE_PERIOD_S,
        )
    except Exception as exc:  # sqlalchemy / driver errors vary by backend
        raise StoreError(f"--storage {redact(url)}: cannot open the Optuna storage ({_first_line(exc)})") from exc
    if url.startswith("sqlite"):
        _serialise_sqlite_writes(storage)
    return storage


def check_tracking(uri: str) -> None:
    """Fail fast (no long retry loop) when the MLflow tracking server/database is unreachable."""
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:
        raise StoreError(f"--tracking-uri {redact(uri)}: MLflow is unreachable ({_first_line(exc)})") from exc


def study_exists(storage: RDBStorage, name: str) -> bool:
    return any(s.study_name == name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))


def _first_line(exc: BaseException) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return text.strip().splitlines()[0][:300]
