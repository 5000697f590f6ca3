"""Which failures belong to the infrastructure, and the error a study stops with when a store stays away.

The rule (``records``' two kinds of failure): an exception is the *infrastructure's* when anything in its chain
(``__cause__`` / ``__context__``) is a connection that was refused, reset, dropped or timed out (Python's own
``ConnectionError`` / ``TimeoutError`` only where a network or store client raised it), an HTTP answer 5xx
or 429 from the tracking server, a database ``OperationalError`` / ``InterfaceError`` / disconnect, or no space
left on a device (a full SQLite or PostgreSQL database included). Everything else — a NaN loss, a shape error, out
of memory, a bad option — is the trial's own, a *genuine* failure. :func:`infrastructure_cause` says which, by the
exception's types and MLflow's own wording of a failed request (MLflow re-raises a refused connection as a bare
``MlflowException`` with the original as its context). :func:`fast_fail_mlflow` scopes MLflow's HTTP retries to
none for one call: the preflight's seconds-long check, and :mod:`.patience`'s own retry loop, which prints what it
waits for instead of MLflow's silent minutes.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MLFLOW_RETRIES_VAR = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
MLFLOW_TIMEOUT_VAR = "MLFLOW_HTTP_REQUEST_TIMEOUT"
FAST_TIMEOUT_S = 30
# MLflow's wording of a request that never got an answer (refused, reset, timed out, retries of 5xx exhausted) ...
_REQUEST_FAILED = re.compile(r"API request to \S+ failed with (timeout )?exception")
# ... and of an answer with a status it did not expect (no JSON body): 5xx and 429 are the server's trouble.
_BAD_STATUS = re.compile(r"failed with error code (5\d\d|429)\b")
_CONNECTION_TYPES = ("ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "RetryError", "MaxRetryError",
                     "ProtocolError", "NewConnectionError", "RemoteDisconnected", "IncompleteRead")
_DATABASE_TYPES = ("OperationalError", "InterfaceError", "DisconnectionError")
# Where a builtin ConnectionError / TimeoutError must come from to be the infrastructure's: a network or store client.
# The same types raised elsewhere — a DataLoader worker's pipe, a compile pool's future timing out, a user's own
# code — are the trial's (else a pair whose trial fails that way would never settle and stop every rerun).
_NETWORK_MODULES = ("socket", "ssl", "http", "urllib", "urllib3", "requests", "mlflow", "sqlalchemy", "psycopg2",
                    "psycopg", "sqlite3")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_DATABASE_FULL = "database or disk is full"  # SQLite's SQLITE_FULL (an OperationalError, no errno)
_DRIVER_PREFIX = re.compile(r"^\(\S+\)\s*")  # SQLAlchemy's "(sqlite3.OperationalError) " before the driver's text
_DISK_FULL_STATE = "53100"  # PostgreSQL's disk_full (psycopg2 / psycopg: DiskFull)
_CHAIN_LIMIT = 20


class InfrastructureError(Exception):
    """The infrastructure failed in a way the study cannot ride out (a store away longer than the outage budget, a
    full disk): the study stops cleanly — one line, a documented exit code — and a rerun resumes it."""


class StoreOutageError(InfrastructureError):
    """A store stayed unreachable longer than the outage budget: the study stops cleanly and resumes on a rerun."""

    def __init__(self, store: str, waited_s: float, cause: str) -> None:
        self.store, self.waited_s, self.cause = store, waited_s, cause
        super().__init__(f"{store} was unreachable for {duration(waited_s)} ({cause})")


def duration(seconds: float) -> str:
    """``75.2`` → ``1 min 15 s``; under a minute: ``42 s``."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _full(exc: BaseException) -> bool:
    """Is ``exc`` itself a full disk: an ``OSError`` ENOSPC / EDQUOT, SQLite's or PostgreSQL's full database?"""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    module = (type(exc).__module__ or "").split(".")[0]
    if module in ("psycopg2", "psycopg"):
        return type(exc).__name__ == "DiskFull" or getattr(exc, "pgcode", None) == _DISK_FULL_STATE
    return module in ("sqlite3", "sqlalchemy") and type(exc).__name__ == "OperationalError" and \
        _DATABASE_FULL in str(exc)


def _raised_by_network_client(exc: BaseException) -> bool:
    """Did ``exc`` pass through a network or store client's code (``_NETWORK_MODULES``) on its way up?"""
    frame = exc.__traceback__
    while frame is not None:
        if str(frame.tb_frame.f_globals.get("__name__", "")).split(".")[0] in _NETWORK_MODULES:
            return True
        frame = frame.tb_next
    return False


def _one(exc: BaseException) -> bool:
    if isinstance(exc, StoreOutageError):
        return True
    if _full(exc):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):  # refused, reset, aborted, broken pipe, socket timeout
        return _raised_by_network_client(exc)
    names = {cls.__name__ for cls in type(exc).__mro__}
    module = type(exc).__module__ or ""
    if names & set(_CONNECTION_TYPES) and module.split(".")[0] in ("requests", "urllib3", "http", "socket"):
        return True
    if names & set(_DATABASE_TYPES) and module.split(".")[0] in ("sqlalchemy", "psycopg2", "psycopg", "sqlite3"):
        return True
    if type(exc).__name__ in ("MlflowException", "RestException"):
        text = str(exc)
        if _REQUEST_FAILED.search(text) or _BAD_STATUS.search(text):
            return True
        if type(exc).__name__ == "RestException":  # the server answered with an error body: 5xx / 429 are its own
            status = getattr(exc, "get_http_status_code", lambda: 400)()
            return status >= 500 or status == 429
    return False


# What a long driver or HTTP message boils down to, for the one line a person reads (first match wins).
_SHORT = (("Connection refused", "connection refused"), ("NewConnectionError", "connection refused"),
          ("Connection reset", "connection reset"), ("RemoteDisconnected", "connection closed by the server"),
          ("timed out", "timed out"), ("timeout", "timed out"), ("terminating connection", "connection dropped"),
          ("server closed the connection", "connection dropped"))
_STATUS = re.compile(r"too many (\d{3}) error responses|error code (\d{3})")


def _short(text: str) -> str:
    status = _STATUS.search(text)
    if status:
        return f"HTTP {status.group(1) or status.group(2)}"
    for needle, meaning in _SHORT:
        if needle in text:
            return meaning
    return text.strip().splitlines()[0][:160] if text.strip() else "no answer"


def infrastructure_cause(exc: BaseException) -> str | None:
    """One short line naming the infrastructure failure behind ``exc`` (``infrastructure: connection refused
    (MlflowException)``), or None when the failure is genuine."""
    for link in _chain(exc):
        if _one(link):
            if isinstance(exc, StoreOutageError):
                return str(exc)
            if _full(link):
                return f"infrastructure: {no_space_note(link)}"
            return f"infrastructure: {_short(str(link))} ({type(link).__name__})"
    return None


def no_space_note(exc: BaseException, where: Path | None = None) -> str | None:
    """For a full disk behind ``exc``: ``"no space left on /path (12.0 MiB free)"`` — the file the error names (a
    copy's destination, not its source: Lightning's checkpoints reach the disk by a move from ``/tmp``), else ``where``
    (the folder being written); None when the failure is not a full disk."""
    for link in _chain(exc):
        if _full(link) and not isinstance(link, OSError):  # the database's own disk, on its server
            return f"no space left for the database ({re.sub(_DRIVER_PREFIX, '', _short(str(link)))})"
        if _full(link):
            # a copy or move names its source first and the file being written (the full one) second
            named = link.filename2 or link.filename
            where = Path(str(named)) if named else where
            probe = where
            while probe is not None and not probe.exists() and probe != probe.parent:
                probe = probe.parent
            free = f" ({shutil.disk_usage(probe).free / 2**20:.1f} MiB free)" if probe is not None else ""
            return f"no space left on {where or 'a device'}{free}"
    return None


def infrastructure_error(exc: BaseException) -> InfrastructureError | None:
    """The first :class:`InfrastructureError` in ``exc``'s chain (itself included), or None. Optuna's ``tell`` can
    hide one: when the storage gave up, its clean-up fails too and raises an ``UnboundLocalError`` whose context
    holds the outage."""
    return next((link for link in _chain(exc) if isinstance(link, InfrastructureError)), None)


@contextmanager
def infrastructure_first() -> Iterator[None]:
    """Within the block, an exception with an :class:`InfrastructureError` in its chain is raised as that error
    (``from`` the original), and one with a full disk or database behind it as a new one naming it, so the
    caller's clean stop (one line, exit 75) is not lost behind a library's own failure while handling it."""
    try:
        yield
    except InfrastructureError:
        raise
    except Exception as exc:
        found = infrastructure_error(exc)
        if found is None and is_no_space(exc):
            found = InfrastructureError(no_space_note(exc))
        if found is None:
            raise
        raise found from exc


def is_no_space(exc: BaseException) -> bool:
    """Is a full disk (or quota, or a full database) behind ``exc``?"""
    return any(_full(link) for link in _chain(exc))


@contextmanager
def fast_fail_mlflow(timeout_s: int = FAST_TIMEOUT_S) -> Iterator[None]:
    """Within the block, MLflow's HTTP calls try once (no retries) and wait at most ``timeout_s``; the
    environment is restored afterwards (the rest of the process keeps MLflow's own settings)."""
    saved = {name: os.environ.get(name) for name in (MLFLOW_RETRIES_VAR, MLFLOW_TIMEOUT_VAR)}
    os.environ[MLFLOW_RETRIES_VAR] = "0"
    os.environ[MLFLOW_TIMEOUT_VAR] = str(timeout_s)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
