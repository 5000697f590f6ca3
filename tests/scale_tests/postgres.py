"""A real PostgreSQL server for the test session: ``initdb`` in a temp dir, loopback only, password auth.

The cluster tests point Optuna (and the MLflow tracking server) at PostgreSQL, the storage a multi-machine study
uses. The server runs from the system's binaries (Debian: ``/usr/lib/postgresql/<version>/bin``), as the
``postgres`` OS user when the tests run as root (``initdb`` and ``postgres`` refuse root), on ``127.0.0.1`` and a
free port. TCP logins need a password (scram-sha-256) so that "passwords are never printed or logged" is checked
against a real secret; the superuser only logs in over the private Unix socket. Missing binaries are an error,
never a skip: the error says how to install them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from tests.support.network import free_port

INSTALL_LINE = "apt-get install -y postgresql"
OS_USER = "postgres"
START_LIMIT_S = 600  # a hang detector, not a speed bound


class PostgresMissingError(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def bin_dir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (newest Debian version first, then PATH)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    found.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").exists():
        return Path(on_path).parent
    raise PostgresMissingError(
        "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/*/bin/postgres and pg_ctl on PATH); "
        f"install them with `{INSTALL_LINE}` (Debian/Ubuntu) before running tests/scale_tests"
    )


@dataclass(frozen=True)
class PostgresServer:
    """A running server: a password-protected role for the tests and a superuser reachable by socket only."""

    bin_dir: Path
    root: Path
    port: int
    user: str
    password: str

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str, *, driver: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy URL of ``database`` as the test role, password included (what a user passes to --storage).

        The driver is explicit: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which is not a
        dependency; psycopg2 (``psycopg2-binary``) is.
        """
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database owned by the test role; returns its URL."""
        self.admin_sql(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        return self.url(name)

    def admin_sql(self, sql: str, database: str = "postgres") -> None:
        """Run a statement as the superuser over the Unix socket (autocommit: CREATE DATABASE needs it)."""
        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user=OS_USER, dbname=database)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()


def as_postgres(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as the ``postgres`` OS user when we are root; as ourselves otherwise."""
    return ["runuser", "-u", OS_USER, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(as_postgres(cmd), capture_output=True, text=True, timeout=START_LIMIT_S)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {result.stdout}\n{result.stderr}")


def _owned_temp_dir() -> Path:
    """A temp dir the server's OS user owns (under /tmp directly: pytest's tmp dirs are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="sasa-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    return root


@contextmanager
def postgres_server(user: str = "sasa", password: str = "s3cret-pw") -> Iterator[PostgresServer]:
    """Start a throw-away PostgreSQL server; yields it and stops it (``pg_ctl stop -m fast``) afterwards."""
    binaries = bin_dir()
    root = _owned_temp_dir()
    data, log = root / "data", root / "server.log"
    server = PostgresServer(bin_dir=binaries, root=root, port=free_port(), user=user, password=password)
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", OS_USER, "--auth-local=trust",
              "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-instructions"], "initdb")
        _run(["mkdir", "-p", str(server.socket_dir)], "mkdir socket dir")
        options = (f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories={server.socket_dir}"
                   " -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
              "-t", str(START_LIMIT_S), "start"], f"pg_ctl start (log: {log})")
        try:
            server.admin_sql(f"CREATE ROLE \"{user}\" LOGIN CREATEDB PASSWORD '{password}'")
            yield server
        finally:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], "pg_ctl stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
