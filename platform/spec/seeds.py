"""Adaptive seeds in the ``search`` section: ``seeds: {min: 3, max: 10}`` (see :class:`.parameters.SearchSpec`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from .sections import Spec, raise_problems

MAX_ADAPTIVE_SEEDS = 100


class SeedRange(Spec):
    """Adaptive seeds ``{min: 3, max: 10}``: seeds 0 … min−1 first, then one more per undecided comparison."""

    min: int = Field(ge=2)
    max: int = Field(le=MAX_ADAPTIVE_SEEDS)

    @model_validator(mode="after")
    def _ordered(self) -> SeedRange:
        if self.max < self.min:
            raise_problems([("max", f"{self.max} is below min ({self.min}); use max ≥ min")])
        return self
