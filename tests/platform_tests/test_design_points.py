"""Explicit grid design points (`search.points`) — how the backbone study lists presets and hybrids."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform.search import grid_points
from platform.spec import SpecError, load_spec, parse_spec
from tests.platform_tests.studyrun import REPO, tiny_spec

PARAMETERS = {"backbone": ["conv", "full", None], "attention_groups": [None, [3, 4]]}
POINTS = [
    {"backbone": "conv", "attention_groups": None},
    {"backbone": None, "attention_groups": [3, 4]},
]


def _search(**changes) -> dict:
    return {"design": "grid", "parameters": PARAMETERS, "points": POINTS, "seeds": [0], **changes}


def test_points_replace_the_cartesian_product() -> None:
    spec = parse_spec(tiny_spec("p", search=_search()))
    assert [p.key for p in grid_points(spec)] == ["backbone=conv,attention_groups=null",
                                                  "backbone=null,attention_groups=3-4"]
    without = parse_spec(tiny_spec("p", search=_search(points=None)))
    assert len(grid_points(without)) == 6


@pytest.mark.parametrize(
    ("points", "design", "fragment"),
    [
        ([{"backbone": "conv"}], "grid", "must set exactly the search parameters"),
        ([{"backbone": "vit", "attention_groups": None}], "grid", "'vit' is not a level of backbone"),
        (POINTS, "random", "explicit design points need design: grid"),
        ([], "grid", "is empty"),
    ],
)
def test_bad_points_are_reported(points: list, design: str, fragment: str) -> None:
    search = _search(points=points, design=design)
    if design != "grid":
        search["n_trials"] = 2
    with pytest.raises(SpecError) as error:
        parse_spec(tiny_spec("p", search=search))
    assert any("search.points" in line and fragment in line for line in error.value.problems), error.value.problems


def test_backbone_study_lists_presets_and_hybrids() -> None:
    spec = load_spec(Path(REPO) / "studies" / "backbone.yaml")
    keys = [p.key for p in grid_points(spec)]
    assert len(keys) == 5 and "backbone=null,attention_groups=3-4" in keys
