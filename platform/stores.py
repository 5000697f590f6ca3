"""Where results live: default URIs under ``./runs/``, opening the Optuna storage, reachability checks.

Defaults (DESIGN.md): Optuna in ``runs/optuna.db`` and MLflow in ``runs/mlflow.db`` (SQLite), MLflow artifacts in
``runs/mlartifacts``, prepared data in ``runs/data_cache``, trial checkpoints in ``runs/trials``. ``--storage`` and
``--tracking-uri`` override the spec, which overrides the defaults.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from sqlalchemy import event

from platform.redaction import redact

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 40


class StoreError(Exception):
    """A store cannot be reached or opened (reported as one line, exit code 2)."""


@dataclass(frozen=True)
class Stores:
    root: Path
    storage_url: str
    tracking_uri: str

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def data_cache(self) -> Path:
        return self.root / "data_cache"

    def trial_dir(self, study: str) -> Path:
        return self.root / "trials" / study

    def ui_command(self) -> str:
        return f"mlflow ui --backend-store-uri {redact(self.tracking_uri)} --port 5000"


def resolve_stores(
    *, cli_storage: str | None, cli_tracking: str | None, spec_storage: str | None, spec_tracking: str | None,
    root: Path | None = None,
) -> Stores:
    root = (root or Path("runs")).resolve()
    storage = cli_storage or spec_storage or f"sqlite:///{root / 'optuna.db'}"
    tracking = cli_tracking or spec_tracking or f"sqlite:///{root / 'mlflow.db'}"
    return Stores(root=root, storage_url=storage, tracking_uri=tracking)


def ensure_local_dirs(stores: Stores) -> None:
    """Create ``runs/`` and prepare SQLite files — only after the spec has been validated.

    SQLite files are switched to write-ahead logging (persistent in the file): readers never block the writer,
    so parallel workers on one machine do not fail with "database is locked" (writers still take turns, and
    Optuna's connections wait up to 60 s for their turn).
    """
    stores.root.mkdir(parents=True, exist_ok=True)
    for uri in (stores.storage_url, stores.tracking_uri):
        if uri.startswith("sqlite:///") and ":memory:" not in uri:
            path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
            path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(path, timeout=60)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")


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
    from mlflow import MlflowClient

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
