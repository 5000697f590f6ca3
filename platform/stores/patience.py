"""Riding out a store's outage: retry a call while the failure is the infrastructure's, within the outage budget.

One :class:`Patience` per store and process (the Optuna storage, the MLflow tracking server). :meth:`Patience.call`
runs a store call; when it fails for the infrastructure (:func:`.faults.infrastructure_cause`) it waits and tries
again — 1 s, 2 s, 4 s … at most :data:`MAX_PAUSE_S` apart — until the store answers or the outage (or the call)
has lasted the budget (``execution.outage_budget``, ``--outage-budget``), then raises
:class:`.faults.StoreOutageError`: the study stops cleanly and a rerun resumes. Each process prints one line when
the store becomes unreachable and one when it is back. After it has given up once, a call tries once only (the
process is stopping; it must not wait again). Genuine errors pass through at once; so does a full disk (waiting
does not free space).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .faults import StoreOutageError, duration, fast_fail_mlflow, infrastructure_cause, is_no_space

T = TypeVar("T")
DEFAULT_BUDGET_S = 300.0
FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 10.0


class Patience:
    """The outage budget and state of one store in this process (thread-safe: Optuna's heartbeat thread uses it)."""

    def __init__(self, store: str, *, budget_s: float = DEFAULT_BUDGET_S, mlflow: bool = False,
                 say: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.budget_s = budget_s
        self.mlflow = mlflow  # MLflow calls run with its own retries off: this loop is the one that waits
        self.say = say or (lambda line: print(line, flush=True))
        self.gave_up = False
        self.back_at: float | None = None  # ``time.monotonic()`` when the last outage ended
        self._lock = threading.Lock()
        self._down_since: float | None = None

    # -- the outage's state --------------------------------------------------------------------------------
    @property
    def down_since(self) -> float | None:
        return self._down_since

    def failed(self, cause: str) -> float:
        """Note a failed attempt; prints the first one of an outage. Returns seconds since the outage began."""
        with self._lock:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                self.say(f"{self.store} is unreachable ({cause}); waiting for it, up to {duration(self.budget_s)} "
                         "(execution.outage_budget)")
            return now - self._down_since

    def answered(self) -> None:
        """Note a call that got through; prints the end of an outage."""
        if self._down_since is None:  # the common case: no lock, no clock
            return
        with self._lock:
            if self._down_since is not None:
                self.back_at = time.monotonic()
                self.say(f"{self.store} is back after {duration(self.back_at - self._down_since)}")
                self._down_since = None

    def away_within(self, seconds: float) -> bool:
        """Was the store unreachable at any moment of the last ``seconds`` (or is it now)?"""
        if self._down_since is not None:
            return True
        return self.back_at is not None and time.monotonic() - self.back_at < seconds

    def stop_waiting(self) -> None:
        """The process is stopping (Ctrl-C): from now on a call tries once — a store that is away fails the call at
        once (:class:`StoreOutageError`) instead of holding the stop for up to the budget; the rerun settles what is
        left RUNNING."""
        self.gave_up = True

    def give_up(self, waited_s: float, cause: str) -> StoreOutageError:
        self.gave_up = True
        return StoreOutageError(self.store, waited_s, cause)

    # -- calls ---------------------------------------------------------------------------------------------
    def attempt(self, fn: Callable[[], T]) -> T:
        """One try of ``fn`` (MLflow: without its own retries)."""
        if not self.mlflow:
            return fn()
        with fast_fail_mlflow():
            return fn()

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried through an infrastructure failure for up to the outage budget — measured from the
        outage's start, and from this call's own start: another thread's successful call (a heartbeat) ends the
        outage, but not the wait of a call that keeps failing."""
        pause = FIRST_PAUSE_S
        started = time.monotonic()
        while True:
            try:
                result = self.attempt(fn)
            except StoreOutageError:
                raise
            except Exception as exc:
                cause = infrastructure_cause(exc)
                if cause is None or is_no_space(exc):
                    raise
                waited = max(self.failed(cause), time.monotonic() - started)
                if self.gave_up or waited >= self.budget_s:
                    raise self.give_up(waited, cause) from exc
                time.sleep(min(pause, max(0.0, self.budget_s - waited)))
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            self.answered()
            return result
