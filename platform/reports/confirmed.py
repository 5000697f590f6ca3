"""The finalists table of a sampled study, read from its stores (see ``platform/study/confirm.py``)."""

from __future__ import annotations

from typing import Any

import optuna

from ..records import STUDY_FINALISTS, is_confirmation
from .load import point_data, stored_spec, study_info
from .views import decisions, finalists


def finalists_of(study: optuna.Study, spec: dict[str, Any] | None = None) -> finalists.FinalistsTable | None:
    """The table of the study's confirmation round (None before its finalists are chosen, or without one);
    ``spec``: the resolved spec dict, by default the one stored on the study."""
    chosen = study.user_attrs.get(STUDY_FINALISTS)
    if not chosen or not (chosen.get("points") or chosen.get("reference")):
        return None
    info = study_info(study, spec if spec is not None else stored_spec(study))
    trials = study.get_trials(deepcopy=False)
    search = point_data([t for t in trials if not is_confirmation(t)], started_only=True)
    confirmed = point_data([t for t in trials if is_confirmation(t)], started_only=True)
    seeds = chosen["seeds"]
    plan = decisions.SeedPlan(chosen.get("effect"), int(seeds["min"]), int(seeds["max"]),
                              int(seeds["max"]) > int(seeds["min"]))
    reference = (chosen.get("reference") or {}).get("key")
    return finalists.finalist_table(search, confirmed, finalists=[p["key"] for p in chosen["points"]],
                                    reference=reference, info=info, plan=plan)
