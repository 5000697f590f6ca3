"""Adaptive seeds in the ``search`` section: ``seeds: {min: 3, max: 10}`` (see :class:`.parameters.SearchSpec`), and
the confirmation round of a sampled study, ``search.confirm``, whose fresh seeds are adaptive too.

A sampled design (tpe, random, cmaes, nsga2) picks its best design points from one noisy run each: the maximum of
a dozen noisy numbers is biased upward (the winner's curse). The confirmation round re-runs the top ``finalists``
distinct design points, plus ``search.reference`` when one is set, on fresh seeds (never a seed the search used),
``seeds: {min, max}`` with the adaptive rule of the grids (``platform/study/confirm.py``).

``confirm`` is on by default for sampled designs; ``confirm: false`` turns it off, ``confirm: true`` or a mapping
``{finalists: 3, seeds: {min: 3, max: 6}}`` sets it.
"""

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


# --- the confirmation round -------------------------------------------------------------------------------

MAX_FINALISTS = 20
DEFAULT_SEEDS = {"min": 3, "max": 6}


class ConfirmSpec(Spec):
    """``search.confirm``: on/off, how many distinct design points are re-run, and their seeds budget."""

    enabled: bool = True
    finalists: int = Field(3, ge=1, le=MAX_FINALISTS)
    seeds: SeedRange = Field(default_factory=lambda: SeedRange.model_validate(DEFAULT_SEEDS))


def confirm_form(value: Any) -> Any:
    """``search.confirm`` before validation: true/false switch the round on or off; a mapping sets it."""
    if value is None or isinstance(value, ConfirmSpec):
        return value
    if isinstance(value, bool):
        return ConfirmSpec(enabled=value)
    if isinstance(value, dict):
        seeds = value.get("seeds")
        if seeds is not None and not isinstance(seeds, dict):
            raise ValueError(f"seeds: expected {{min: 3, max: 6}} (fresh seeds, adaptive); got {show(seeds)}")
        return ConfirmSpec.model_validate(value)
    raise ValueError(f"expected true, false or {{finalists: 3, seeds: {{min: 3, max: 6}}}}; got {show(value)}")


def confirm_problems(*, design: str, confirm: ConfirmSpec | None, reference: dict[str, Any] | None,
                     parameters: list[str]) -> list[tuple[str, str]]:
    """What ``search.confirm`` and ``search.reference`` get wrong together: a grid has no confirmation round, and
    the reference of a confirmation round is one design point (every searched parameter set)."""
    if design == "grid":
        if confirm is not None and confirm.enabled:
            return [("confirm", "is for sampled designs (tpe, random, cmaes, nsga2): a grid runs every design "
                                "point on its seeds already; remove it")]
        return []
    missing = [name for name in parameters if name not in (reference or {})]
    if reference and missing and (confirm is None or confirm.enabled):
        return [("reference", f"the confirmation round re-runs the reference as one design point: set every "
                              f"searched parameter (missing: {', '.join(missing)}), or use confirm: false")]
    return []
