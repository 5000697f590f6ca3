"""SQLite store files: what a file holds (checked read-only), read-only URLs, and creation an interrupt cannot
half-finish.

- :func:`store_problem` opens an existing file read-only (SQLite ``mode=ro``) and says why it is not the store it
  is named as: not a SQLite file (``x.png``), the other library's store (``--storage runs/mlflow.db``), or a store
  left half-created (tables without a schema version, or a schema version this library does not know — what an
  interrupted first run of an older sasa-lab left behind). Each answer names the file and the fix.
- :func:`read_only_url` turns ``sqlite:///PATH`` into ``sqlite:///file:PATH?mode=ro&uri=true``: the read-only
  commands (dashboards, ``load_results``, the dry run's verdicts) can never write, not even a schema.
- :func:`create_store` builds a missing store in a temporary file beside it (journal mode DELETE, so nothing else
  is left once it is closed), then links it into place: the store file either does not exist or is complete. An
  interrupt leaves only the temporary file, which the next run removes; two commands creating the same store at
  once keep the first one's (a link never replaces a file).
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from .redaction import redact

SQLITE_HEADER = b"SQLite format 3\x00"
OPTUNA, MLFLOW = "optuna", "mlflow"
# Tables whose presence says which library made a store (a subset: enough to tell them apart).
TABLES = {OPTUNA: frozenset({"studies", "trials", "version_info"}), MLFLOW: frozenset({"experiments", "runs"})}
LABELS = {OPTUNA: "Optuna storage", MLFLOW: "MLflow tracking store"}
CREATING = ".creating-"  # temporary name: .<store name>.creating-<host>-<pid>


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None: not a SQLite file URL, in memory, or already a ``file:`` URI)."""
    if not url.startswith("sqlite:///"):
        return None
    database = url.removeprefix("sqlite:///").split("?", 1)[0]
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def read_only_url(url: str) -> str:
    """``url`` opened read-only when it names a SQLite file (SQLite URI ``mode=ro``); other URLs unchanged."""
    path = sqlite_path(url)
    if path is None:
        return url
    return f"sqlite:///file:{quote(str(path.resolve()), safe='/:')}?mode=ro&uri=true"


def _tables(path: Path) -> tuple[set[str], str | None]:
    """Table names and the alembic schema version of an existing SQLite file, read-only."""
    uri = f"file:{quote(str(path.resolve()), safe='/:')}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "alembic_version" in names:
            row = connection.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
            version = row[0] if row else None
    return names, version


@functools.cache
def _schema(kind: str) -> tuple[frozenset[str], str | None]:
    """Every alembic revision the installed library ships, and its head (the schema it creates)."""
    from alembic.script import ScriptDirectory  # late: only when an existing store is checked

    if kind == OPTUNA:
        import optuna.storages._rdb as package  # late: the library's migrations, when a store is checked
        folder = Path(package.__file__).parent / "alembic"
    else:
        import mlflow.store.db_migrations as package  # type: ignore[import-untyped]  # late: as above
        folder = Path(package.__file__).parent
    scripts = ScriptDirectory(str(folder))
    return frozenset(script.revision for script in scripts.walk_revisions()), scripts.get_current_head()


def store_problem(url: str, kind: str, option: str, *, empty_ok: bool = True) -> str | None:
    """Why the existing SQLite file of ``url`` is not a usable ``kind`` store (None: it is, or it is absent, or —
    with ``empty_ok``, for a command that will create the tables — empty).

    Read-only: the file is opened with SQLite's ``mode=ro``; nothing is written, not even to an empty file.
    """
    path = sqlite_path(url)
    if path is None or not path.exists():
        return None
    shown = f"{option} {redact(url)}"
    if not path.is_file():
        return f"{shown}: {path} is a folder, not a database file; give a file path (e.g. runs/{kind}.db)"
    empty = f"{shown}: {path} holds no {LABELS[kind]} yet (an empty database: an interrupted first run leaves " \
            f"one); run a study first, or pass the right {option}"
    if path.stat().st_size == 0:
        return None if empty_ok else empty  # an empty file is an empty database: a study makes its tables
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"{shown}: cannot read {path} ({exc.strerror or exc})"
    if header != SQLITE_HEADER:
        return f"{shown}: {path} is not a SQLite database (not made by Optuna or MLflow); give the {LABELS[kind]} " \
               f"file, or a path that does not exist yet (e.g. runs/{kind}.db)"
    try:
        names, version = _tables(path)
    except sqlite3.Error as exc:
        return f"{shown}: {path} cannot be read as a SQLite database ({exc}); give the {LABELS[kind]} file"
    if not names:
        return None if empty_ok else empty
    other = MLFLOW if kind == OPTUNA else OPTUNA
    if not TABLES[kind] & names and TABLES[other] <= names:
        return f"{shown}: {path} is an {LABELS[other]}, not an {LABELS[kind]}; " + \
            ("--storage names Optuna's file (runs/optuna.db), --tracking-uri MLflow's (runs/mlflow.db)"
             if option.startswith("--") else f"give the {LABELS[kind]} file")
    if not TABLES[kind] & names:
        return f"{shown}: {path} is a SQLite database of something else (tables: {', '.join(sorted(names)[:5])}); " \
               f"give the {LABELS[kind]} file, or a path that does not exist yet"
    known, head = _schema(kind)
    remove = f"remove {path} (and {path.name}-wal / -shm beside it, if any) and rerun, which creates it again"
    if not TABLES[kind] <= names or version is None or version not in known:
        what = "no schema version" if version is None else f"schema {version}, unknown to this {kind}"
        return f"{shown}: {path} is a half-created {LABELS[kind]} ({what}; an interrupted first run leaves " \
               f"this); {remove}"
    if kind == MLFLOW and version != head:
        runs = _count(path, "runs")
        return f"{shown}: {path} has MLflow schema {version}, not this MLflow's {head}: a first run interrupted " \
               f"while it created the tables leaves this (it holds {runs} run(s)); {remove}" + \
               ("" if not runs else f", or keep its runs with: mlflow db upgrade sqlite:///{path}")
    return None


def _count(path: Path, table: str) -> int:
    uri = f"file:{quote(str(path.resolve()), safe='/:')}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def is_empty(url: str) -> bool:
    """Whether the SQLite file of ``url`` exists and holds no table (a store not created yet)."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return False
    try:
        return path.stat().st_size == 0 or not _tables(path)[0]
    except (OSError, sqlite3.Error):
        return False


def _owner() -> str:
    return f"{socket.gethostname().replace('-', '_')}-{os.getpid()}"


def remove_leftovers(path: Path) -> None:
    """Remove the temporary files of interrupted creations of ``path`` by this host (their process is gone)."""
    host = socket.gethostname().replace("-", "_")
    for leftover in path.parent.glob(f".{path.name}{CREATING}{host}-*"):
        pid = leftover.name.rsplit(CREATING, 1)[-1].split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            leftover.unlink()


def process_alive(pid: int) -> bool:
    """Is process ``pid`` (on this host) still running? (One that exists but is not ours counts as alive.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def create_store(path: Path, build: Callable[[str], None]) -> bool:
    """Create the store ``path`` unless it exists: ``build(url)`` makes the schema in a temporary file, which is
    then linked into place. Returns True when this call created it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    temporary = path.with_name(f".{path.name}{CREATING}{_owner()}")
    try:
        build(f"sqlite:///{temporary}")
        with closing(sqlite3.connect(temporary)) as connection:  # every connection of build is closed by now
            connection.execute("PRAGMA journal_mode=DELETE")
        try:
            os.link(temporary, path)  # atomic, and never replaces a store another command created meanwhile
            created = True
        except FileExistsError:
            created = False
        except OSError:  # a file system without hard links
            if path.exists():
                created = False
            else:
                os.replace(temporary, path)
                created = True
    finally:
        for leftover in (temporary, *(Path(f"{temporary}{s}") for s in ("-journal", "-wal", "-shm"))):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return created
