"""Ctrl-C between Optuna's ``ask()`` and the objective: held, so no trial is left RUNNING.

Optuna's trial loop (``study.optimize``) makes a trial RUNNING inside ``study.ask()`` and only then enters the
``try`` around the objective that turns a ``KeyboardInterrupt`` into a FAIL. A Ctrl-C in between — while ``ask``
reads the study for the sampler, or while the heartbeat thread starts — escapes that ``try`` and leaves the trial
RUNNING in the store, where only a later run's housekeeping would find it. A fast machine spends tens of
milliseconds there per trial: a person pressing Ctrl-C hits it now and then, a test that reacts to the trial's
RUNNING state hits it every time.

:func:`hold_interrupts_around_ask` wraps a study's ``ask`` so that SIGINT is held from the moment ``ask`` starts
until the objective calls :func:`deliver_held_interrupt` as its first statement; a held Ctrl-C is raised there,
inside the ``try``, so Optuna records the trial as FAIL (an interrupted trial, not a genuine failure: it runs again).
Only the main thread can hold signals; elsewhere both are no-ops.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import optuna

_held: dict[str, Any] = {}  # "previous": the SIGINT handler to restore; "pending": a Ctrl-C came while held


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _hold() -> None:
    if not _main_thread() or "previous" in _held:
        return

    def remember(signum: int, frame: FrameType | None) -> None:
        _held["pending"] = True

    _held["previous"] = signal.signal(signal.SIGINT, remember)


def deliver_held_interrupt() -> None:
    """End the hold: restore the SIGINT handler and raise the Ctrl-C that came meanwhile, if any."""
    if "previous" not in _held:
        return
    signal.signal(signal.SIGINT, _held.pop("previous"))
    if _held.pop("pending", False):
        raise KeyboardInterrupt


def hold_interrupts_around_ask(study: optuna.Study) -> None:
    """Hold Ctrl-C from the start of each ``study.ask()`` until the objective delivers it (idempotent)."""
    if getattr(study.ask, "holds_interrupts", False):
        return
    ask: Callable[..., optuna.Trial] = study.ask

    @functools.wraps(ask)
    def held_ask(*args: Any, **kwargs: Any) -> optuna.Trial:
        _hold()
        try:
            return ask(*args, **kwargs)
        except BaseException:
            deliver_held_interrupt()  # no trial to record: a held Ctrl-C is raised here instead
            raise

    held_ask.holds_interrupts = True  # type: ignore[attr-defined]
    study.ask = held_ask  # type: ignore[method-assign]
