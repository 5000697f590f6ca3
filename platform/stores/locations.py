"""Where results live: default URIs under ``./runs/`` and the folders of one study's files.

Defaults (DESIGN.md): Optuna in ``runs/optuna.db`` and MLflow in ``runs/mlflow.db`` (SQLite), MLflow artifacts in
``runs/mlartifacts``, prepared data in ``runs/data_cache``, trial checkpoints in ``runs/trials``. ``--storage`` and
``--tracking-uri`` override the spec, which overrides the defaults.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .connect import build_mlflow_store, build_optuna_store
from .redaction import redact
from .sqlite_files import create_store, sqlite_path


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
    """Create ``runs/`` and the SQLite stores that do not exist yet — only after the preflight passed.

    Each missing store is built in a temporary file and linked into place (:func:`.sqlite_files.create_store`), so
    an interrupt never leaves a half-made store. SQLite files are switched to write-ahead logging (persistent in
    the file): readers never block the writer, so parallel workers on one machine do not fail with "database is
    locked" (writers still take turns, and Optuna's connections wait up to 60 s for their turn).
    """
    stores.root.mkdir(parents=True, exist_ok=True)
    artifacts = str(stores.artifact_root)
    for url, build in ((stores.storage_url, build_optuna_store),
                       (stores.tracking_uri, lambda u: build_mlflow_store(u, artifacts))):
        path = sqlite_path(url)
        if path is None:
            continue
        create_store(path, build)
        with closing(sqlite3.connect(path, timeout=60)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
