"""Adaptive seeds in the ``search`` section: ``seeds: {min: 3, max: 10}`` (see :class:`.parameters.SearchSpec`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from .base import MAX_SEED, Spec
from .errors import raise_problems, show

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


def seed_form(value: Any) -> Any:
    """``search.seeds`` before validation: a mapping is adaptive ({min, max}); anything else must be a list."""
    if isinstance(value, dict):
        return SeedRange.model_validate(value)
    if not isinstance(value, list):
        raise ValueError(f"expected a list of seeds (e.g. [0, 1, 2]) or {{min: 3, max: 10}}; got {show(value)}")
    return value


def check_seeds(value: list[int] | SeedRange) -> list[int] | SeedRange:
    """A seed list is non-empty, distinct and in 0..MAX_SEED (a SeedRange validated itself)."""
    if isinstance(value, SeedRange):
        return value
    if not value:
        raise ValueError("is empty; give at least one seed, e.g. [0]")
    out_of_range = [s for s in value if not 0 <= s <= MAX_SEED]
    if out_of_range:
        raise ValueError(f"seed {out_of_range[0]} is out of range; seeds are integers in 0..{MAX_SEED}")
    duplicates = sorted({s for s in value if value.count(s) > 1})
    if duplicates:
        raise ValueError(f"seed {duplicates[0]} is listed twice; seeds must be distinct")
    return value
