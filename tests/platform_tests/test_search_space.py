"""Tests for platform.search: design points, encoding, Optuna distributions/suggest, samplers, pruners."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from platform import search as search_space
from platform.search import DesignPoint, build_model, grid_points, point_from_optuna, resolve, suggest
from platform.spec import SpecError, StudySpec, TrainSpec, parse_spec
from platform.spec.parameters import count_levels, decode
from platform.spec.values import encode

optuna.logging.set_verbosity(optuna.logging.WARNING)


def spec_with(parameters: dict[str, Any], **search: Any) -> StudySpec:
    return parse_spec({"name": "s", "search": {"parameters": parameters, **search}})


def test_grid_of_five_by_two_in_yaml_order() -> None:
    spec = spec_with({"window_size": [3, 5, 7, 9, 11], "pos_enc": ["none", "relative"]})
    points = grid_points(spec)
    assert len(points) == 10
    assert [p.key for p in points[:3]] == ["window_size=3,pos_enc=none", "window_size=3,pos_enc=relative",
                                           "window_size=5,pos_enc=none"]
    assert points[-1].key == "window_size=11,pos_enc=relative"
    assert points[-1].params == {"window_size": 11, "pos_enc": "relative"}
    assert len({p.key for p in points}) == 10
    assert [p.key for p in grid_points(spec)] == [p.key for p in points]  # deterministic


def test_int_range_expands_with_its_step() -> None:
    spec = spec_with({"model.stem_mixtures": {"type": "int", "low": 1, "high": 7, "step": 3}})
    assert [p.params["model.stem_mixtures"] for p in grid_points(spec)] == [1, 4, 7]


def test_no_parameters_gives_one_base_point() -> None:
    spec = parse_spec({"name": "s", "model": {"kernel_size": 5}})
    (point,) = grid_points(spec)
    assert point == DesignPoint({}, "base", {})
    model, train = resolve(spec, point)
    options = model.options()
    assert options["kernel_size"] == 5 and model.name == "resnet26"
    assert "backbone" not in options and "stem" not in options  # nulls dropped: create_model's defaults apply
    assert train == spec.train
    net = build_model(spec, point, num_classes=10, in_channels=1)
    assert net.config["kernel_size"] == 5 and net.config["heads"] == 8  # the factory's default fills heads


def test_attention_groups_are_encoded_for_optuna_and_decoded_back() -> None:
    choices = [[], [1], [1, 2], [3, 4], None]
    spec = spec_with({"attention_groups": choices})
    param = spec.search.parameters["attention_groups"]
    assert [encode(c) for c in choices] == ["none", "1", "1-2", "3-4", None]
    assert [decode(param, encode(c)) for c in choices] == choices
    points = grid_points(spec)
    assert [p.key for p in points] == ["attention_groups=none", "attention_groups=1", "attention_groups=1-2",
                                       "attention_groups=3-4", "attention_groups=null"]
    assert points[2].optuna_params == {"attention_groups": "1-2"} and points[2].params == {"attention_groups": [1, 2]}
    assert search_space.distributions(spec)["attention_groups"].choices == ("none", "1", "1-2", "3-4", None)
    assert point_from_optuna(spec, {"attention_groups": "3-4"}) == points[3]
    with pytest.raises(ValueError, match="not one of the parameter's encoded choices"):
        decode(param, "2-3")


def test_suggest_returns_enqueued_grid_points() -> None:
    spec = spec_with({"window_size": [3, 7], "attention_groups": [[], [3, 4]], "lr": [0.1, 0.01],
                      "model.width": [0.5]}, seeds=[0, 1])
    points = grid_points(spec)
    study = optuna.create_study(sampler=search_space.make_sampler(spec))
    for point in points:
        study.enqueue_trial(point.optuna_params)
    got: list[DesignPoint] = []
    study.optimize(lambda trial: got.append(suggest(trial, spec)) or 0.0, n_trials=len(points))
    assert got == points
    assert study.trials[1].distributions == search_space.distributions(spec)


def test_suggest_samples_inside_every_distribution() -> None:
    spec = spec_with({
        "pos_enc": ["none", "relative"], "attention_groups": [[], [4]],
        "model.stem_mixtures": {"type": "int", "low": 1, "high": 5, "step": 2},
        "lr": {"type": "log_float", "low": 1e-3, "high": 1.0}, "train.momentum": {"type": "float", "low": 0.5,
                                                                                  "high": 0.9},
    }, design="tpe", n_trials=6)
    study = optuna.create_study(sampler=search_space.make_sampler(spec, seed=3))
    points: list[DesignPoint] = []
    study.optimize(lambda trial: points.append(suggest(trial, spec)) or 0.0, n_trials=6)
    for trial, point in zip(study.trials, points, strict=True):
        p = point.params
        assert p["pos_enc"] in ("none", "relative") and p["attention_groups"] in ([], [4])
        assert p["model.stem_mixtures"] in (1, 3, 5) and 1e-3 <= p["lr"] <= 1.0 and 0.5 <= p["train.momentum"] <= 0.9
        assert point_from_optuna(spec, trial.params) == point
        assert point.key.startswith(f"pos_enc={p['pos_enc']},attention_groups=")


def test_resolve_applies_model_and_train_values() -> None:
    spec = spec_with({"window_size": [3], "attention_groups": [[3, 4]], "lr": [0.01], "train.epochs": [2]})
    model, train = resolve(spec, grid_points(spec)[0])
    assert model.kernel_size == 3 and model.attention_groups == [3, 4]
    assert isinstance(train, TrainSpec) and train.lr == 0.01 and train.epochs == 2
    assert spec.train.lr == 0.1  # the spec itself is unchanged


def test_resolve_revalidates_the_sections() -> None:
    spec = spec_with({"lr": [0.1], "heads": [4]})
    with pytest.raises(ValueError, match="lr"):
        resolve(spec, DesignPoint({"lr": -1.0}, "lr=-1", {"lr": -1.0}))
    with pytest.raises(ValueError, match="heads"):  # one check per option: the factory's
        build_model(spec, DesignPoint({"heads": 0}, "heads=0", {"heads": 0}), num_classes=10, in_channels=1)


def test_train_levels_are_checked_against_the_real_train_section() -> None:
    raw = {"name": "s", "train": {"epochs": 5}, "search": {"parameters": {"train.warmup_epochs": [1, 6]}}}
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert info.value.problems == ["search.parameters.train.warmup_epochs: train.warmup_epochs=6: warmup_epochs: "
                                   "6 exceeds epochs (5); use ≤ epochs"]
    raw["train"] = {"epochs": 6}
    assert parse_spec(raw).search.parameters["train.warmup_epochs"].choices == [1, 6]


def test_huge_int_ranges_are_not_enumerated() -> None:
    spec = spec_with({"train.batch_size": {"type": "int", "low": 1, "high": 10**12}}, design="random", n_trials=1)
    assert count_levels(spec.search.parameters["train.batch_size"]) == 10**12
    with pytest.raises(SpecError, match="the grid has 1000000000000 design points"):
        spec_with({"train.batch_size": {"type": "int", "low": 1, "high": 10**12}})


@pytest.mark.parametrize(("design", "extra", "sampler"), [
    ("grid", {}, optuna.samplers.RandomSampler),
    ("random", {"n_trials": 2}, optuna.samplers.RandomSampler),
    ("tpe", {"n_trials": 2}, optuna.samplers.TPESampler),
    ("nsga2", {"n_trials": 2}, optuna.samplers.NSGAIISampler),
])
def test_sampler_and_directions_per_design(design: str, extra: dict[str, Any], sampler: type) -> None:
    raw = {"name": "s", "search": {"design": design, "parameters": {"heads": [4, 8]}, **extra}}
    if design == "nsga2":
        raw["objective"] = {"second": "flops"}
    spec = parse_spec(raw)
    assert isinstance(search_space.make_sampler(spec, seed=1), sampler)
    assert search_space.directions(spec) == (["maximize", "minimize"] if design == "nsga2" else ["maximize"])


def test_cmaes_sampler() -> None:
    spec = spec_with({"heads": [4, 8]})  # cmaes itself is validated against the optional package: bypass that
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"design": "cmaes"})})
    assert isinstance(search_space.make_sampler(spec, seed=0), optuna.samplers.CmaEsSampler)


def test_directions_follow_the_metric() -> None:
    spec = parse_spec({"name": "s", "objective": {"metric": "val/loss"}})
    assert search_space.directions(spec) == ["minimize"]


@pytest.mark.parametrize(("kind", "pruner"), [
    ("none", optuna.pruners.NopPruner), ("median", optuna.pruners.MedianPruner),
    ("hyperband", optuna.pruners.HyperbandPruner), ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
])
def test_pruners(kind: str, pruner: type) -> None:
    spec = parse_spec({"name": "s", "pruner": {"type": kind, "warmup_epochs": 2}, "train": {"epochs": 6}})
    assert isinstance(search_space.make_pruner(spec), pruner)


def test_median_pruner_waits_for_the_warmup_epochs() -> None:
    spec = parse_spec({"name": "s", "pruner": {"type": "median", "warmup_epochs": 3}, "train": {"epochs": 6}})
    study = optuna.create_study(pruner=search_space.make_pruner(spec), direction="maximize")
    for _ in range(6):  # five good trials, so the median is high
        trial = study.ask()
        for epoch in range(6):
            trial.report(1.0, epoch)
        study.tell(trial, 1.0)
    bad = study.ask()
    bad.report(0.0, 2)
    assert not bad.should_prune()  # epoch 2 is still warm-up
    bad.report(0.0, 3)
    assert bad.should_prune()


def test_grid_combination_that_does_not_build_is_reported() -> None:
    # width 0.125 makes layer group 1 eight channels wide; 16 heads divide 64 but not 8.
    raw = {"name": "s", "model": {"backbone": "attention"},
           "search": {"parameters": {"heads": [8, 16], "width": [1.0, 0.125]}}}
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    (line,) = info.value.problems
    assert line.startswith("search.parameters: design point heads=16,width=0.125: create_model: heads=16")


def test_base_model_that_does_not_build_is_reported_at_model() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "s", "model": {"backbone": "full", "heads": 7}, "search": {"parameters": {
            "window_size": [3, 5]}, "design": "random", "n_trials": 2}})
    assert info.value.problems == [info.value.problems[0]] and info.value.problems[0].startswith("model: ")
