"""``python -m benchmarks.resilience_probe OUT.json STUDY-ARGS...``: a study that clocks its own resilience layer.

Run by :mod:`benchmarks.study_overhead` (not by hand), from the repo root. It wraps, before the study opens its
stores, the entry points of the fault-tolerance layer (issue 23) with clocks, runs ``python -m platform.study
STUDY-ARGS`` in this process, and writes to ``OUT.json`` the seconds the layer spent on its own work:

- ``wrappers_s``: time inside the layer's wrappers of store calls (``Patience.call`` / ``Patience.attempt``: the
  Optuna storage's calls, the heartbeat and every MLflow call; ``PatientClient``'s outbox and journal) *minus* the
  store calls themselves, which a study without the layer makes too;
- ``durable_s``: writing each trained trial's result to ``finished.pt`` before the stores record it (all of it is the
  layer's: ``durable.save_finished``), and looking for one left by an earlier run (``load_finished``);
- ``store_calls`` / ``store_s``: how many store calls went through the layer, and their own time (for scale).

The clocks' own cost (two ``perf_counter`` calls per wrapper) is counted in, so the figure errs high.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOTALS = {"wrappers_s": 0.0, "store_s": 0.0, "store_calls": 0, "durable_s": 0.0, "saved": 0}
_lock = threading.Lock()
_depth = threading.local()  # per thread: how deep inside the layer's entry points we are


def _add(**amounts: float) -> None:
    with _lock:
        for key, value in amounts.items():
            TOTALS[key] += value


def _entry(method: Callable[..., Any]) -> Callable[..., Any]:
    """The outermost layer call on this thread is timed whole (store calls inside it are subtracted later)."""

    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "n", 0)
        _depth.n = depth + 1
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _depth.n = depth
            if depth == 0:
                _add(wrappers_s=time.perf_counter() - start)

    return timed


def _store_call(fn: Callable[[], Any]) -> Callable[[], Any]:
    """The store call a ``Patience.attempt`` makes: its time is the store's, not the layer's."""

    def timed() -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            elapsed = time.perf_counter() - start
            _add(store_s=elapsed, wrappers_s=-elapsed, store_calls=1)

    return timed


def _durable(function: Callable[..., Any], *, saves: bool) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _add(durable_s=time.perf_counter() - start, saved=int(saves))

    return timed


def install() -> None:
    """Wrap the layer's entry points (classes and the objective's references: its instances are made later)."""
    from platform.stores.patience import Patience
    from platform.study import objective
    from platform.study.resilient import PatientClient

    attempt = Patience.attempt
    Patience.attempt = _entry(lambda self, fn: attempt(self, _store_call(fn)))  # type: ignore[method-assign]
    Patience.call = _entry(Patience.call)  # type: ignore[method-assign]
    for name in ("log_batch", "set_terminated"):
        setattr(PatientClient, name, _entry(getattr(PatientClient, name)))
    getattr_ = PatientClient.__getattr__

    def patient_getattr(self: PatientClient, name: str) -> Any:
        attr = getattr_(self, name)
        return _entry(attr) if callable(attr) else attr

    PatientClient.__getattr__ = patient_getattr  # type: ignore[method-assign]
    objective.save_finished = _durable(objective.save_finished, saves=True)
    objective.load_finished = _durable(objective.load_finished, saves=False)


def main() -> int:
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    install()
    from platform.study.__main__ import main as study_main

    code = study_main(argv)
    out.write_text(json.dumps(TOTALS))
    return code


if __name__ == "__main__":
    sys.exit(main())
