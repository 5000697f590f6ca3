"""The pydantic base of every spec section (:class:`Spec`) and the seed limit shared by sections and seeds.

Sections are pydantic v2 models: strict (no string-to-number coercion), ``extra="forbid"`` (an unknown key is a
problem, not silently ignored), frozen, and no NaN/infinity.  This module imports nothing else of the spec package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict

MAX_SEED = 2**32 - 1  # numpy / Lightning seeds are 32-bit
MAX_WORKERS = 1024


def worker_count(value: Any) -> int | str:
    """``execution.workers``: an integer from 1 to MAX_WORKERS, or "auto" (``platform/study/devices.py``)."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_WORKERS):
        return value
    raise ValueError(f"expected an integer from 1 to {MAX_WORKERS} or 'auto'; got {value!r}")

# A spec read back from a store was checked in full when its study began. Read back, the checks that need the
# user's own code are skipped — importing a ``module:function`` builder, building the model — so the results of a
# study of a researcher's backbone can be read (report, promotion, ``load_results``) where that module is not
# importable; everything else is validated as usual.
_STORED: ContextVar[bool] = ContextVar("stored_spec", default=False)


@contextmanager
def reading_stored_spec() -> Iterator[None]:
    """Validate a spec read back from a store (see ``_STORED``) inside this block."""
    token = _STORED.set(True)
    try:
        yield
    finally:
        _STORED.reset(token)


def is_stored_spec() -> bool:
    """Inside :func:`reading_stored_spec`?"""
    return _STORED.get()


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
