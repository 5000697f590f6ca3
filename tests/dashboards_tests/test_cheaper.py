"""The best design point by mean against the cheaper ones (issue 24): the comparison, the cheapest rule and the
report's sentence, on constructed design points (the verdicts come from the real decision rule)."""

from __future__ import annotations

from dashboards import cheaper, legend
from dashboards.data import PointData, StudyInfo

SEEDS = range(6)
BASE = {s: 0.90 + 0.004 * ((s * 3) % 5) for s in SEEDS}


def _info(effect: float | None = 0.02, seeds: list[int] | None = None) -> StudyInfo:
    seeds = list(SEEDS) if seeds is None else seeds
    search = {"design": "grid", "parameters": {"window_size": {"type": "categorical", "choices": [5, 7, 9]}},
              "seeds": seeds, "reference": {"window_size": 7}}
    if effect is not None:
        search["effect"] = effect
    return StudyInfo(name="cost", design="grid", metric="val/acc", direction="maximize", second=None,
                     parameters=dict(search["parameters"]), reference={"window_size": 7}, seeds=seeds,
                     model_name="resnet26", description="cost", parent_run_id=None,
                     spec={"search": search, "objective": {"metric": "val/acc", "direction": "maximize"}},
                     reference_levels={"window_size": "7"})


def _point(k: int, values: dict[int, float]) -> PointData:
    return PointData(key=f"window_size={k}", level={"window_size": str(k)}, raw_level={"window_size": k},
                     values=values, n_complete=len(values), params=1000 * k, flops=100 * k * k)


def _points(seeds=SEEDS) -> list[PointData]:
    """k=9 best by mean; k=7 0.0005 below it on average, ±0.004 by seed (equivalent); k=5 0.05 below (worse)."""
    return [_point(5, {s: BASE[s] - 0.05 + 0.002 * (s % 3) for s in seeds}),
            _point(7, {s: BASE[s] - 0.0005 + 0.004 * (s % 3 - 1) for s in seeds}),
            _point(9, {s: BASE[s] for s in seeds})]


def test_the_best_by_mean_is_compared_with_every_cheaper_point() -> None:
    found = cheaper.check(_points(), _info())
    assert found.best == "window_size=9" and found.cheaper == ("window_size=5", "window_size=7")  # cheapest first
    assert found.against_best == {"window_size=5": "worse", "window_size=7": "equivalent"}
    assert found.cheapest == "window_size=7" and found.reason is None
    line = cheaper.cheaper_line(found)
    assert line == ("window_size=9 is not decided better than cheaper window_size=7 (equivalent, 40 % fewer "
                    "FLOPs); the cheapest shown within ±0.02 of it is window_size=7, which `--prefer cheapest` "
                    "promotes.")
    best = legend.best_line(found.best, {"window_size=9": "equivalent", "window_size=5": "worse",
                                         "window_size=7": "reference"}, cheaper=line)
    assert best is not None and best.startswith("Best mean: window_size=9 (equivalent vs its reference)")
    assert best.endswith(line)


def test_undecided_and_worse_points_are_never_chosen() -> None:
    cheap = ("window_size=3", "window_size=5", "window_size=7")  # cheapest first
    assert cheaper.cheapest_choice("window_size=9", cheap, {"window_size=3": "undecided",
                                                            "window_size=5": "worse"}) == "window_size=9"
    assert cheaper.cheapest_choice("window_size=9", cheap, {"window_size=3": "worse", "window_size=5": "equivalent",
                                                            "window_size=7": "equivalent"}) == "window_size=5"
    assert cheaper.cheapest_choice("window_size=9", cheap, {"window_size=7": "better"}) == "window_size=7"
    assert cheaper.cheapest_choice("window_size=9", (), {}) == "window_size=9"


def test_the_sentence_when_the_best_is_shown_better_or_no_point_is_as_good() -> None:
    costs = {"a": (1.0, 1.0), "b": (2.0, 1.0), "c": (3.0, 3.0)}
    better = cheaper.CostCheck(best="c", cheaper=("a", "b"), against_best={"a": "worse", "b": "worse"},
                               costs=costs, effect=0.02)
    assert cheaper.cheaper_line(better) == "c is decided better than every cheaper design point (2)."
    open_ = cheaper.CostCheck(best="c", cheaper=("a", "b"), against_best={"a": "worse", "b": "undecided"},
                              costs=costs, effect=0.02)
    assert cheaper.cheaper_line(open_, labels={"b": "k=5", "c": "k=9"}) == (
        "k=9 is not decided better than cheaper k=5 (undecided, 33 % fewer FLOPs); none is shown within ±0.02 of "
        "it yet, so `--prefer cheapest` keeps k=9.")
    # Equal FLOPs, fewer parameters: cheaper by parameters.
    by_params = cheaper.CostCheck(best="b", cheaper=("a",), against_best={"a": "equivalent"},
                                  costs={"a": (2.0, 0.5), "b": (2.0, 1.0)}, effect=0.02)
    assert "(equivalent, 50 % fewer parameters)" in (cheaper.cheaper_line(by_params) or "")
    assert cheaper.cheaper_line(cheaper.CostCheck(best="a", costs=costs, effect=0.02)) is None  # nothing cheaper


def test_without_verdicts_nothing_is_compared_and_the_best_is_kept() -> None:
    for info in (_info(effect=None), _info(seeds=[0])):
        points = _points() if info.seeds != [0] else _points(seeds=[0])
        found = cheaper.check(points, info)
        assert found.best == "window_size=9" and found.against_best == {} and found.reason
        assert found.cheapest == "window_size=9" and cheaper.cheaper_line(found) is None
    unknown = [PointData(key=p.key, level=p.level, raw_level=p.raw_level, values=p.values) for p in _points()]
    found = cheaper.check(unknown, _info())
    assert found.cheapest == "window_size=9" and "not recorded" in (found.reason or "")
