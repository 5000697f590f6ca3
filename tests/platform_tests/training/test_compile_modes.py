"""``train.compile``: false or a ``torch.compile`` mode ("default", "reduce-overhead", "max-autotune"); ``true``,
what specs stored before the modes existed say, means "default". The mode reaches ``torch.compile`` and the MLflow
params of the trial; a stored spec with ``compile: true`` still resumes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient

import sasa
from platform.spec import SpecError, TrainSpec, parse_spec
from platform.spec.compare import result_changes
from platform.study.tracking import Tracker
from platform.training import SasaClassifier
from tests.platform_tests.studyrun import tiny_spec


@pytest.mark.parametrize(("given", "stored"), [(False, False), (True, "default"), ("default", "default"),
                                               ("reduce-overhead", "reduce-overhead"),
                                               ("max-autotune", "max-autotune")])
def test_compile_takes_a_mode_and_true_means_default(given: Any, stored: Any) -> None:
    assert TrainSpec(compile=given).compile == stored
    spec = parse_spec(tiny_spec("modes"), [f"train.compile={str(given).lower()}"])
    assert spec.train.compile == stored


def test_a_bad_compile_mode_names_the_valid_ones() -> None:
    with pytest.raises(SpecError, match=r"train\.compile.*default.*reduce-overhead.*max-autotune"):
        parse_spec(tiny_spec("modes"), ["train.compile=fast"])


def test_a_stored_spec_with_compile_true_resumes_as_default() -> None:
    current = parse_spec(tiny_spec("modes", train={"compile": "default"})).resolved_dict()
    stored = copy.deepcopy(current)
    stored["train"]["compile"] = True  # as a study created before the modes stored it
    assert result_changes(stored, current) == []
    assert result_changes({**stored, "train": {**stored["train"], "compile": "max-autotune"}}, current) == [
        "train.compile"]


def _classifier(compile: Any) -> SasaClassifier:
    net = sasa.create_model("resnet26", 3, in_channels=1, width=0.1, small_input=True, backbone="conv")
    return SasaClassifier(dict(net.config), optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.0,
                          warmup_epochs=0.0, label_smoothing=0.0, compile=compile, net=net)


@pytest.mark.parametrize(("compile", "mode"), [("max-autotune", "max-autotune"), ("reduce-overhead",
                                               "reduce-overhead"), (True, "default"), (False, None)])
def test_the_mode_reaches_torch_compile(compile: Any, mode: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``torch.compile`` runs (it compiles lazily, at the first call); the spy only records its mode."""
    seen: list[str | None] = []
    real = torch.compile

    def spy(model: torch.nn.Module, **kwargs: Any) -> Any:
        seen.append(kwargs.get("mode"))
        return real(model, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    module = _classifier(compile)
    module.configure_model()
    assert module.compile_mode == mode
    assert seen == ([] if mode is None else [mode])
    assert (module._compiled is None) == (mode is None)


def test_mlflow_records_the_mode(tmp_path: Path) -> None:
    """What the objective logs for a trial (the resolved train section, flattened) on a real tracking store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("modes")).info.run_id
    spec = parse_spec(tiny_spec("modes"), ["train.compile=true"])
    tracker.log_params(run, {"train": spec.train.model_dump()})
    assert client.get_run(run).data.params["train.compile"] == "default"
