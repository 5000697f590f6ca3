"""Session fixtures for the scale-out tests: a real PostgreSQL server and an ``mlflow server`` with basic auth.

Both run on loopback for the whole session and are started only when a test asks for them. The tracking server
stores runs in PostgreSQL (as on a cluster), serves artifacts from a temp dir, and requires a login: clients pass
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (see :meth:`TrackingServer.env`).
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.scale_tests.postgres import PostgresServer, postgres_server
from tests.support.network import free_port
from tests.support.servers import serve

MLFLOW_ADMIN = "admin"
MLFLOW_PASSWORD = "tr4ck-s3cret-pw-9"  # basic-auth wants ≥ 12 characters


@dataclass(frozen=True)
class TrackingServer:
    uri: str
    username: str
    password: str
    log: Path

    def env(self) -> dict[str, str]:
        """What a client (a study command, an MlflowClient) needs in its environment to log in."""
        return {"MLFLOW_TRACKING_USERNAME": self.username, "MLFLOW_TRACKING_PASSWORD": self.password}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def tracking_server(postgres: PostgresServer) -> Iterator[TrackingServer]:
    """``mlflow server --app-name basic-auth`` over PostgreSQL (runs and users), artifacts in a temp dir."""
    root = Path(tempfile.mkdtemp(prefix="sasa-mlflow-"))
    backend = postgres.create_database("mlflow")
    auth_db = postgres.create_database("mlflow_auth")
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {auth_db}\nadmin_username = {MLFLOW_ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    port = free_port()
    log = root / "server.log"
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
        "--backend-store-uri", backend, "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
    ]
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}
    try:
        with serve(cmd, "/health", port, log, cwd=root, env=env) as uri:
            server = TrackingServer(uri, MLFLOW_ADMIN, MLFLOW_PASSWORD, log)
            with pytest.MonkeyPatch.context() as patch:  # this process's MlflowClients log in too
                for key, value in server.env().items():
                    patch.setenv(key, value)
                yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
