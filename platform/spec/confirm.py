"""The confirmation round of a sampled study: ``search.confirm`` (see :class:`.parameters.SearchSpec`).

A sampled design (tpe, random, cmaes, nsga2) picks its best design points from one noisy run each: the maximum of
a dozen noisy numbers is biased upward (the winner's curse). The confirmation round re-runs the top ``finalists``
distinct design points, plus ``search.reference`` when one is set, on fresh seeds (never a seed the search used),
``seeds: {min, max}`` with the adaptive rule of the grids (``platform/study/confirm.py``).

``confirm`` is on by default for sampled designs; ``confirm: false`` turns it off, ``confirm: true`` or a mapping
``{finalists: 3, seeds: {min: 3, max: 6}}`` sets it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import Spec
from .errors import show
from .seeds import SeedRange

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
