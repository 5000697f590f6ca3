"""The search section's verdict settings: ``effect``, ``seeds`` as a list or ``{min, max}``, ``max_trials``."""

from __future__ import annotations

from typing import Any

import pytest

from platform.spec import SpecError, load_spec, parse_spec

GRID = {"design": "grid", "parameters": {"heads": [1, 2]}, "reference": {"heads": 2}}


def _spec(**search: Any) -> Any:
    return parse_spec({"name": "s", "search": {**GRID, **search}})


def test_a_list_keeps_the_fixed_design() -> None:
    search = _spec(seeds=[4, 7]).search
    assert (search.adaptive, search.initial_seeds, search.seed_bounds, search.effect) == (False, [4, 7], (2, 2), None)


def test_adaptive_seeds_start_at_zero_and_round_trip_through_yaml(tmp_path) -> None:
    spec = _spec(seeds={"min": 3, "max": 10}, effect=0.005)
    assert (spec.search.adaptive, spec.search.initial_seeds, spec.search.seed_bounds) == (True, [0, 1, 2], (3, 10))
    path = tmp_path / "s.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path) == spec
    assert load_spec(path, ["search.seeds={min: 2, max: 4}"]).search.seed_bounds == (2, 4)


@pytest.mark.parametrize(("search", "expected"), [
    ({"seeds": {"min": 3, "max": 2}, "effect": 0.01}, "search.seeds.max: 2 is below min (3); use max ≥ min"),
    ({"seeds": {"min": 1, "max": 4}, "effect": 0.01}, "search.seeds.min: must be ≥ 2; got 1"),
    ({"seeds": {"min": 3, "max": 101}, "effect": 0.01}, "search.seeds.max: must be ≤ 100; got 101"),
    ({"seeds": {"min": 3}, "effect": 0.01}, "search.seeds.max: required key is missing"),
    ({"seeds": "many"}, "search.seeds: expected a list of seeds (e.g. [0, 1, 2]) or {min: 3, max: 10}; got 'many'"),
    ({"seeds": {"min": 3, "max": 5}}, "search.effect: required with adaptive seeds {min, max}"),
    ({"seeds": {"min": 3, "max": 5}, "effect": 0.01, "reference": None}, "search.reference: required with adaptive"),
    ({"design": "tpe", "n_trials": 4, "seeds": {"min": 3, "max": 5}, "effect": 0.01},
     "search.seeds: adaptive seeds {min, max} need design: grid"),
    ({"effect": 0}, "search.effect: must be > 0"),
    ({"max_trials": 20}, "search.max_trials: caps the trials adaptive seeds add"),
])
def test_bad_seed_settings_are_reported_at_their_path(search: dict[str, Any], expected: str) -> None:
    with pytest.raises(SpecError) as info:
        _spec(**search)
    assert any(expected in line for line in info.value.problems), info.value.problems
