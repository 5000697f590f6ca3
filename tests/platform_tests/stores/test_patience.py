"""Riding out an outage (``stores.patience``): a real refused TCP connection until a listener appears, one line when
the store goes away and one when it is back, a clean :class:`StoreOutageError` after the budget, genuine errors at
once."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from platform.stores.connect import open_storage
from platform.stores.faults import StoreOutageError
from platform.stores.patience import Patience
from platform.stores.patient_storage import GRACE_PERIOD_S, heartbeats_trustworthy
from tests.support.network import free_port


def _connect(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        return "answered"


def test_an_outage_is_waited_out_with_one_line_each_way() -> None:
    port, lines, listener = free_port(), [], []

    def say(line: str) -> None:
        lines.append(line)
        if not listener:  # the store comes back once the outage has been noticed (an event, not a delay)
            server = socket.socket()
            server.bind(("127.0.0.1", port))
            server.listen()
            listener.append(server)

    patience = Patience("the test store", budget_s=120, say=say)
    try:
        assert patience.call(lambda: _connect(port)) == "answered"
    finally:
        for server in listener:
            server.close()
    assert len(lines) == 2, lines
    assert lines[0].startswith("the test store is unreachable (") and "waiting for it, up to 2 min 0 s" in lines[0]
    assert lines[1].startswith("the test store is back after")


def test_past_the_budget_it_stops_and_then_tries_once_only() -> None:
    port, lines = free_port(), []
    patience = Patience("the test store", budget_s=1, say=lines.append)
    with pytest.raises(StoreOutageError, match="the test store was unreachable for") as stopped:
        patience.call(lambda: _connect(port))
    assert stopped.value.waited_s >= 1 and len(lines) == 1
    attempts = []

    def counted() -> str:
        attempts.append(1)
        return _connect(port)

    with pytest.raises(StoreOutageError):
        patience.call(counted)
    assert len(attempts) == 1, "a process that gave up once must not wait a second budget"


def test_after_ctrl_c_a_call_tries_once_instead_of_waiting_out_the_budget() -> None:
    """Ctrl-C during an outage (``objective`` / ``run`` call ``stop_waiting``): closing the run must not wait."""
    port, attempts = free_port(), []
    patience = Patience("the test store", budget_s=3600, say=lambda line: None)

    def counted() -> str:
        attempts.append(1)
        return _connect(port)

    patience.stop_waiting()
    with pytest.raises(StoreOutageError):
        patience.call(counted)
    assert len(attempts) == 1, "an interrupted process must not wait for the store"
    with socket.socket() as server:  # a store that answers still gets the write
        server.bind(("127.0.0.1", port))
        server.listen()
        assert patience.call(lambda: _connect(port)) == "answered"


def test_a_call_failing_while_another_thread_gets_through_still_stops_at_the_budget() -> None:
    patience, attempts = Patience("the test store", budget_s=1, say=lambda line: None), []

    def failing() -> None:
        attempts.append(1)
        if len(attempts) > 2:
            raise ValueError("retried past the budget")  # genuine: passes through, the test fails instead of hanging
        patience.answered()  # the heartbeat thread's beat got through just before
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(StoreOutageError, match="the test store was unreachable for"):
        patience.call(failing)
    assert len(attempts) == 2


def test_genuine_errors_are_not_retried() -> None:
    attempts, lines = [], []

    def broken() -> None:
        attempts.append(1)
        raise ValueError("bad metric name")

    with pytest.raises(ValueError, match="bad metric name"):
        Patience("the test store", budget_s=60, say=lines.append).call(broken)
    assert attempts == [1] and lines == []


def test_heartbeats_are_not_judged_right_after_a_database_outage(tmp_path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    storage.patience.say = lambda line: None
    assert heartbeats_trustworthy(storage)
    storage.patience.failed("infrastructure: connection refused")
    assert not heartbeats_trustworthy(storage), "while the database is away"
    storage.patience.answered()
    assert not heartbeats_trustworthy(storage), "within a grace period after it is back"
    assert storage.patience.away_within(GRACE_PERIOD_S) and not storage.patience.away_within(0)
