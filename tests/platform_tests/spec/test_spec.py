"""Tests for platform.spec: loading, --set overrides, defaults, and one-line-per-problem validation errors."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from platform.records import METRIC_VAL_ACC
from platform.spec import LOGGED_METRICS, SpecError, StudySpec, load_spec, parse_spec

BASE: dict[str, Any] = {
    "name": "window_size",
    "search": {"parameters": {"window_size": [3, 5, 7], "pos_enc": ["none", "relative"]}},
}


def write(tmp_path: Path, data: Any, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return path


def with_changes(**sections: Any) -> dict[str, Any]:
    """BASE with whole sections (or top-level keys) replaced; None deletes the key."""
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def problems_of(tmp_path: Path, data: Any, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, data), overrides)
    return info.value.problems


BAD_SPECS = [
    pytest.param(with_changes(model={"kernal_size": 5}), (),
                 "model.kernal_size: unknown key; did you mean 'kernel_size'?", id="unknown-key"),
    pytest.param(with_changes(storag="sqlite:///x.db"), (),
                 "storag: unknown key; did you mean 'storage'?", id="unknown-top-level-key"),
    pytest.param(with_changes(data={"augment": {"horizontal_flp": True}}), (),
                 "data.augment.horizontal_flp: unknown key; did you mean 'horizontal_flip'?", id="unknown-nested"),
    pytest.param(with_changes(search={"parameters": {"window_size": [3, 4, 5]}}), (),
                 "search.parameters.window_size.choices[1]: window size 4 is even; SASA windows must be odd "
                 "(e.g. 3, 5, 7)", id="even-window-choice"),
    pytest.param(with_changes(search={"parameters": {"window_size": {"type": "int", "low": 3, "high": 7}}}), (),
                 "search.parameters.window_size: range 3..7 (step 1) includes invalid values 4, 6", id="even-range"),
    pytest.param(with_changes(model={"kernel_size": 6}), (), "model.kernel_size: window size 6 is even",
                 id="even-window-model"),
    pytest.param(with_changes(model={"backbone": "attention"}, search={"parameters": {"heads": [4, 6]}}), (),
                 "search.parameters.heads: create_model: heads=6 does not divide", id="heads-not-dividing"),
    pytest.param(with_changes(model={"pos_enc": "relatve"}), (),
                 "model.pos_enc: 'relatve' is not valid (did you mean 'relative'?); choose one of none, absolute, "
                 "relative", id="bad-literal"),
    pytest.param(with_changes(model={"name": "resnet27"}), (),
                 "model.name: 'resnet27' is not valid (did you mean 'resnet26'?); choose one of resnet26, resnet38, "
                 "resnet50, or your own builder 'package.module:function'", id="bad-model-name"),
    pytest.param(with_changes(model={"name": "no_such_pkg_xyz.nets:build"}), (),
                 "model.name: cannot import module 'no_such_pkg_xyz.nets' of model 'no_such_pkg_xyz.nets:build' "
                 "(ModuleNotFoundError", id="builder-not-importable"),
    pytest.param(with_changes(model={"name": "json:lods"}), (),
                 "model.name: 'json' has no attribute 'lods' (model 'json:lods') (did you mean 'loads'?)",
                 id="builder-missing"),
    pytest.param(with_changes(model={"name": "json:__version__"}), (),
                 "model.name: 'json:__version__' is a str, not callable", id="builder-not-callable"),
    pytest.param(with_changes(search={"parameters": {"attention_groups": [[3, 4], [5]]}}), (),
                 "search.parameters.attention_groups.choices[1]: layer group 5 does not exist", id="bad-group"),
    pytest.param(with_changes(objective={"metric": "val/accuracy"}), (),
                 "objective.metric: 'val/accuracy' is never logged; valid: val/acc, val/acc_top5, val/loss",
                 id="metric-never-logged"),
    pytest.param(with_changes(objective={"metric": "test/acc"}), (),
                 "objective.metric: 'test/acc' is not a validation metric", id="metric-not-validation"),
    pytest.param(with_changes(data={"source": "local", "path": "/no/such/dir"}), (),
                 "data.path: /no/such/dir does not exist", id="local-path-missing"),
    pytest.param(with_changes(data={"source": "local"}), (), "data.path: required when source is local",
                 id="local-without-path"),
    pytest.param(with_changes(data={"source": "hf"}), (), "data.name: required when source is hf",
                 id="hf-without-name"),
    pytest.param(with_changes(search={"parameters": {"lr": {"type": "float", "low": 0.01, "high": 0.1}}}), (),
                 "search.parameters.lr: a float range cannot be gridded", id="grid-float-range"),
    pytest.param(with_changes(search={"design": "nsga2", "n_trials": 4, "parameters": {"heads": [4, 8]}}), (),
                 "search.design: nsga2 is multi-objective; set objective.second", id="nsga2-without-second"),
    pytest.param(with_changes(objective={"second": "flops"}), (),
                 "objective.second: 'flops' makes the study multi-objective, which needs search.design: nsga2",
                 id="second-without-nsga2"),
    pytest.param(with_changes(search={"parameters": {"heads": [4, 8]}, "seeds": []}), (),
                 "search.seeds: is empty; give at least one seed", id="empty-seeds"),
    pytest.param(with_changes(search={"parameters": {"heads": [4, 8]}, "seeds": [0, 1, 1]}), (),
                 "search.seeds: seed 1 is listed twice; seeds must be distinct", id="duplicate-seeds"),
    pytest.param(with_changes(search={"design": "tpe", "parameters": {"heads": [4, 8]}}), (),
                 "search.n_trials: required for design tpe unless timeout is set", id="tpe-without-n_trials"),
    pytest.param(with_changes(search={"parameters": {"heads": [4, 8]}, "n_trials": 3}), (),
                 "search.n_trials: not used by the grid design", id="grid-with-n_trials"),
    pytest.param(BASE, ("train.lr",), "--set train.lr: expected dotted.key=value", id="set-syntax"),
    pytest.param(BASE, ("train lr=0.1",), "--set train lr=0.1: expected dotted.key=value", id="set-bad-key"),
    pytest.param(BASE, ("train.lrr=0.1",), "--set train.lrr=0.1: unknown key 'lrr' in 'train'; did you mean 'lr'?",
                 id="set-unknown-key"),
    pytest.param(BASE, ("trian.lr=0.1",), "unknown key 'trian' in the top level; did you mean 'train'?",
                 id="set-unknown-section"),
    pytest.param(BASE, ("train.lr=[0.1",), "--set train.lr=[0.1: the value is not valid YAML", id="set-bad-value"),
    pytest.param(with_changes(search={"parameters": {"window_size": [3, 5]}, "reference": {"window_size": 9}}), (),
                 "search.reference.window_size: 9 is not a level of window_size; choose one of 3, 5",
                 id="reference-not-a-level"),
    pytest.param(with_changes(search={"parameters": {"window_size": {"type": "int", "low": 3, "high": 7, "step": 2}},
                                      "reference": {"window_size": 4}}), (),
                 "search.reference.window_size: 4 is not a level of window_size; choose an integer in 3..7 (step 2)",
                 id="reference-not-in-int-range"),
    pytest.param(with_changes(search={"parameters": {"window_size": [3, 5]}, "reference": {"heads": 8}}), (),
                 "search.reference.heads: not a search parameter", id="reference-not-a-parameter"),
    pytest.param(with_changes(name=None), (), "name: required key is missing", id="name-missing"),
    pytest.param(with_changes(name="my study"), (), "name: 'my study' is not a valid study name", id="bad-name"),
    pytest.param(with_changes(search={"parameters": {"window": [3, 5]}}), (),
                 "search.parameters.window: unknown parameter (did you mean 'window_size'?)", id="unknown-param"),
    pytest.param(with_changes(search={"parameters": {"model.kernel": [3, 5]}}), (),
                 "search.parameters.model.kernel: 'kernel' is not a model option (did you mean 'kernel_size'?)",
                 id="unknown-dotted-param"),
    pytest.param(with_changes(search={"parameters": {"window_size": [3, 5], "model.kernel_size": [7]}}), (),
                 "search.parameters.model.kernel_size: sets model.kernel_size, already set by 'window_size'",
                 id="duplicate-target"),
    pytest.param(with_changes(search={"parameters": {"heads": {"type": "categorical", "choices": [4], "low": 1}}}),
                 (), "search.parameters.heads.low: not used by type categorical", id="param-extra-field"),
    pytest.param(with_changes(search={"design": "tpe", "n_trials": 2,
                                      "parameters": {"lr": {"type": "log_float", "low": 0, "high": 1}}}),
                 (), "search.parameters.lr.low: must be > 0 for log_float", id="log-float-low"),
    pytest.param(with_changes(search={"parameters": {"heads": 4}}), (),
                 "search.parameters.heads: expected a list of choices or a mapping with 'type'", id="param-scalar"),
    pytest.param(with_changes(train={"precision": 32}), (),
                 "train.precision: 32 is not valid; choose one of 32-true, 16-mixed, bf16-mixed, 64-true",
                 id="precision"),
    pytest.param(with_changes(train={"lr": "fast"}), (), "train.lr: expected a number; got 'fast'", id="lr-type"),
    pytest.param(with_changes(train={"epochs": 0}), (), "train.epochs: must be ≥ 1; got 0", id="epochs"),
    pytest.param(with_changes(train={"limit_train_batches": 1.5}), (), "train.limit_train_batches: 1.5 is out of "
                 "range", id="limit-batches"),
    pytest.param(with_changes(data={"val_fraction": 0.6}), (), "data.val_fraction: must be < 0.5; got 0.6",
                 id="val-fraction"),
    pytest.param(with_changes(model="resnet26"), (), "model: expected a mapping; got 'resnet26'",
                 id="section-not-mapping"),
    pytest.param(with_changes(search={"design": "nsga2", "n_trials": 4, "parameters": {"heads": [4, 8]}},
                              objective={"second": "params"}, pruner={"type": "median"}), (),
                 "pruner.type: 'median' cannot prune a multi-objective study", id="pruner-multi-objective"),
    pytest.param(with_changes(pruner={"type": "hyperband", "warmup_epochs": 10}), (),
                 "pruner.warmup_epochs: 10 ≥ train.epochs (10)", id="pruner-warmup"),
    pytest.param(with_changes(execution={"devices": [0], "workers": 2}), (),
                 "execution.workers: 2 workers × 1 devices per trial need 2 devices; devices lists 1",
                 id="too-few-devices"),
    pytest.param(with_changes(execution={"devices": [0, 0]}), (), "execution.devices: device indices must be distinct",
                 id="duplicate-devices"),
]


@pytest.mark.parametrize(("data", "overrides", "expected"), BAD_SPECS)
def test_bad_spec_reports_the_problem_on_one_line(
    tmp_path: Path, data: Any, overrides: tuple[str, ...], expected: str
) -> None:
    problems = problems_of(tmp_path, data, overrides)
    assert any(expected in line for line in problems), problems
    assert all("\n" not in line for line in problems)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = with_changes(
        model={"kernal_size": 5, "pos_enc": "relatve"},
        train={"lr": -1},
        search={"parameters": {"window_size": [3, 4]}, "seeds": []},
        objective={"metric": "val/accuracy"},
    )
    problems = problems_of(tmp_path, data, ("train.momentm=0.5",))
    for path in ("model.kernal_size", "model.pos_enc", "train.lr", "search.parameters.window_size.choices[1]",
                 "search.seeds", "objective.metric", "--set train.momentm=0.5"):
        assert any(line.startswith(path + ":") for line in problems), (path, problems)


def test_cross_section_checks_run_even_when_another_section_is_invalid(tmp_path: Path) -> None:
    data = with_changes(train={"lr": "fast"}, objective={"second": "flops"})
    problems = problems_of(tmp_path, data)
    assert any(line.startswith("train.lr:") for line in problems)
    assert any(line.startswith("objective.second:") for line in problems)


def test_spec_error_text_is_prefixed_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, with_changes(model={"pos_enc": "relatve"}))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    text = str(info.value).splitlines()
    assert text[0] == f"{path}: 1 problem"
    assert text[1].strip().startswith("model.pos_enc: 'relatve' is not valid")
    assert isinstance(info.value, ValueError)


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nmodel:\n  heads: [4, 8\ntrain: {}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (line,) = info.value.problems
    assert line.startswith("line 4, column ") and "YAML syntax error" in line


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ntrain:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "line 4, column 3: YAML syntax error: duplicate key 'lr'" in info.value.problems[0]


def test_missing_file_and_non_mapping_top_level(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="top level: expected a mapping"):
        load_spec(write(tmp_path, "- name: x\n"))


def test_minimal_spec_gets_the_documented_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "name: tiny\n"))
    assert spec.data.source == "digits" and spec.data.image_size == 16 and spec.data.val_fraction == 0.15
    assert spec.data.grayscale is None and spec.data.augment.horizontal_flip is False
    # Model options default to null: the factory's own default (one default per option).
    assert spec.model.name == "resnet26" and spec.model.options() == {}
    config = spec.model.build(num_classes=10, in_channels=1).config
    assert config["kernel_size"] == 7 and config["heads"] == 8 and config["pos_enc"] == "relative"
    assert config["small_input"] is False and config["backbone"] == "conv"
    assert spec.train.epochs == 10 and spec.train.optimizer == "sgd" and spec.train.precision == "32-true"
    assert spec.train.weight_decay == pytest.approx(1e-4) and spec.train.max_steps is None
    assert spec.search.design == "grid" and spec.search.parameters == {} and spec.search.seeds == [0]
    assert spec.objective.metric == METRIC_VAL_ACC and spec.objective.direction == "maximize"
    assert spec.objective.second is None and spec.pruner.type == "none" and spec.pruner.warmup_epochs == 1
    assert spec.execution.devices == "auto" and spec.execution.workers == 1
    assert spec.storage is None and spec.tracking is None


def test_direction_follows_the_metric_unless_given(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, "name: a\nobjective: {metric: val/loss}\n")).objective.direction == "minimize"
    spec = load_spec(write(tmp_path, "name: a\nobjective: {metric: val/loss, direction: maximize}\n"))
    assert spec.objective.direction == "maximize"


def test_yaml_details_scientific_floats_empty_sections_and_off_values(tmp_path: Path) -> None:
    text = "name: a\ntrain:\n  lr: 1e-3\n  weight_decay: 5e-5\n  max_steps: -1\n  epochs: 3\nsearch:\npruner:\n"
    spec = load_spec(write(tmp_path, text))
    assert spec.train.lr == pytest.approx(1e-3) and isinstance(spec.train.lr, float)
    assert spec.train.weight_decay == pytest.approx(5e-5)
    assert spec.train.max_steps is None and spec.search.design == "grid" and spec.pruner.type == "none"


def test_shorthand_and_mapping_parameters_normalise(tmp_path: Path) -> None:
    data = with_changes(search={"design": "tpe", "n_trials": 4, "parameters": {
        "window_size": [3, 5], "heads": {"choices": [4, 8]}, "stem_mixtures": {"type": "int", "low": 1, "high": 4},
        "lr": {"type": "log_float", "low": 1e-3, "high": 1}}})
    params = load_spec(write(tmp_path, data)).search.parameters
    assert params["window_size"].type == "categorical" and params["window_size"].choices == [3, 5]
    assert params["heads"].type == "categorical"
    assert params["stem_mixtures"].step == 1
    assert params["lr"].low == pytest.approx(1e-3) and params["lr"].high == 1


def test_overrides_are_applied(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE), (
        "train.lr=0.05", "data.augment.horizontal_flip=true", "search.seeds=[0, 1, 2]",
        "search.parameters.window_size=[5, 9]", "search.parameters.model.width.choices=[0.5]",
        "model.attention_groups=[3, 4]", "storage=", "tracking=sqlite:///t.db",
    ))
    assert spec.train.lr == 0.05 and spec.data.augment.horizontal_flip is True
    assert spec.search.seeds == [0, 1, 2] and spec.search.parameters["window_size"].choices == [5, 9]
    assert spec.search.parameters["model.width"].choices == [0.5]
    assert spec.model.attention_groups == [3, 4] and spec.storage is None and spec.tracking == "sqlite:///t.db"
    assert spec.search.parameters["pos_enc"].choices == ["none", "relative"]  # untouched


def test_override_into_a_shorthand_parameter(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE), ("search.parameters.pos_enc.choices=[absolute]",))
    assert spec.search.parameters["pos_enc"].choices == ["absolute"]


def test_round_trip_through_to_yaml(tmp_path: Path) -> None:
    data = with_changes(
        description="Table 4",
        search={"parameters": {"window_size": [3, 5], "attention_groups": [[], [3, 4]]},
                "seeds": [0, 1], "reference": {"attention_groups": [3, 4]}},
        model={"backbone": "attention", "heads": 4},
        train={"limit_train_batches": 0.5, "limit_val_batches": 2, "gradient_clip_val": 1},
        execution={"devices": [0, 1], "workers": 2},
    )
    spec = load_spec(write(tmp_path, data))
    again = load_spec(write(tmp_path, spec.to_yaml(), "resolved.yaml"))
    assert again == spec
    assert again.resolved_dict() == spec.resolved_dict()
    assert spec.resolved_dict()["train"]["limit_val_batches"] == 2 and spec.train.limit_train_batches == 0.5
    assert yaml.safe_load(spec.to_yaml())["search"]["parameters"]["attention_groups"]["choices"] == [[], [3, 4]]


def test_round_trip_of_a_sampled_search(tmp_path: Path) -> None:
    data = with_changes(search={"design": "tpe", "n_trials": 3, "timeout": 60, "parameters": {
        "lr": {"type": "log_float", "low": 1e-4, "high": 1}, "model.stem_mixtures": {"type": "int", "low": 1,
                                                                                      "high": 4}},
        "reference": {"lr": 0.1, "model.stem_mixtures": 4}})
    spec = load_spec(write(tmp_path, data))
    assert spec.search.parameters["lr"].high == 1.0 and isinstance(spec.search.parameters["lr"].high, float)
    assert load_spec(write(tmp_path, spec.to_yaml(), "resolved.yaml")) == spec


def test_spec_is_frozen(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE))
    with pytest.raises(pydantic.ValidationError):
        spec.train.lr = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        spec.name = "other"  # type: ignore[misc]


def test_local_source_with_an_existing_path(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    spec = parse_spec({"name": "x", "data": {"source": "local", "path": str(tmp_path / "images")}})
    assert spec.data.path == str(tmp_path / "images")
    (tmp_path / "a.parquet").write_bytes(b"")
    assert parse_spec({"name": "x", "data": {"source": "local", "path": str(tmp_path / "*.parquet")}}).data.path


def test_cmaes_needs_its_package() -> None:
    raw = {"name": "x", "search": {"design": "cmaes", "n_trials": 3,
                                   "parameters": {"lr": {"type": "log_float", "low": 1e-3, "high": 1}}}}
    if importlib.util.find_spec("cmaes") is None:
        with pytest.raises(SpecError, match="cmaes needs the optional 'cmaes' package"):
            parse_spec(raw)
    else:
        assert parse_spec(raw).search.design == "cmaes"


def test_direct_construction_also_validates_cross_section_rules() -> None:
    with pytest.raises(pydantic.ValidationError, match="nsga2"):
        StudySpec.model_validate({"name": "x", "objective": {"second": "params"}})


def test_the_spec_metrics_are_the_logged_ones() -> None:
    """The spec's metric vocabulary (platform/spec/metrics.py) is records' persisted one, default included."""
    import platform.records as records
    from platform.spec import metrics
    from platform.spec.sections import ObjectiveSpec

    assert metrics.LOGGED_METRICS == records.LOGGED_METRICS
    assert ObjectiveSpec.model_validate({}).metric == records.METRIC_VAL_ACC == metrics.DEFAULT_METRIC
    assert metrics.SPLITS == records.SPLITS and metrics.STATS == records.STATS and metrics.LOSS == records.STAT_LOSS


def test_logged_metrics_constant() -> None:
    # The persisted metric names, pinned as literals once (the contract with stored runs): every split logs loss,
    # acc and acc_top5 (training.classifier); the spec reads the names from records.
    assert set(LOGGED_METRICS) == {f"{stage}/{m}" for stage in ("train", "val", "test")
                                   for m in ("loss", "acc", "acc_top5")}
