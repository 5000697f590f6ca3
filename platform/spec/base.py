"""The pydantic base of every spec section (:class:`Spec`) and the seed limit shared by sections and seeds.

Sections are pydantic v2 models: strict (no string-to-number coercion), ``extra="forbid"`` (an unknown key is a
problem, not silently ignored), frozen, and no NaN/infinity.  This module imports nothing else of the spec package.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

MAX_SEED = 2**32 - 1  # numpy / Lightning seeds are 32-bit


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
