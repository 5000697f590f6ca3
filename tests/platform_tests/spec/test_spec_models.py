"""The spec's model section reads sasa's vocabularies and names a researcher's own builder (issue 20).

The spec and ``sasa.create_model`` must accept exactly the same model names, presets, stems, positional
encodings, backends and layer groups; a new ResNet depth in ``sasa.models.factory.MODELS`` needs no spec edit; a
``module:function`` builder gets the options set in the YAML (plus the data's ``in_channels``), and its errors
are reported at the YAML path to blame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

import sasa
from platform.spec import SpecError, parse_spec
from platform.spec.compare import result_changes
from platform.spec.sections import ModelSpec
from sasa.kernels import BACKENDS
from sasa.models import factory
from tests.support.modules import write_user_module

USER_MODULE = '''
from torch import nn

import sasa


class Net(nn.Module):
    def __init__(self, num_classes, in_channels, kernel_size, heads):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.attention = sasa.SASA2d(8, 8, kernel_size=kernel_size, heads=heads)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.attention(self.stem(x)).mean(dim=(2, 3)))


def net(num_classes, in_channels=3, kernel_size=3, heads=2):
    return Net(num_classes, in_channels, kernel_size, heads)


def broken(num_classes, in_channels=3):
    raise TypeError("the builder's own bug")
'''

VOCABULARIES = {
    "backbone": tuple(factory.PRESETS),
    "stem": factory.STEMS,
    "pos_enc": factory.POS_ENCODINGS,
    "backend": BACKENDS,
}
SMALL = {"width": 0.25, "small_input": True}


def spec_accepts(field: str, value: Any) -> bool:
    try:
        ModelSpec.model_validate({field: value})
    except ValidationError:
        return False
    return True


def sasa_accepts(field: str, value: Any) -> bool:
    options = {**SMALL, field: value} if field != "name" else SMALL
    try:
        with torch.device("meta"):
            sasa.create_model(value if field == "name" else "resnet26", 10, **options)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("field", ["name", *VOCABULARIES])
def test_the_spec_and_sasa_accept_the_same_values(field: str) -> None:
    known = sasa.list_models() if field == "name" else list(VOCABULARIES[field])
    others = {v for vocabulary in VOCABULARIES.values() for v in vocabulary} | {"resnet27", "bogus", "", "Relative"}
    for value in [*known, *sorted(others - set(known))]:
        assert spec_accepts(field, value) == sasa_accepts(field, value) == (value in known), (field, value)


def test_the_spec_and_sasa_accept_the_same_layer_groups() -> None:
    for group in range(-1, 7):
        accepted = group in factory.LAYER_GROUPS
        assert spec_accepts("attention_groups", [group]) == sasa_accepts("attention_groups", [group]) == accepted


def test_a_new_depth_needs_no_other_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(factory.MODELS, "resnet14", factory.ModelSpec("resnet14", (1, 1, 1, 1)))
    spec = parse_spec({"name": "depth", "model": {"name": "resnet14", **SMALL},
                       "search": {"parameters": {"window_size": [3, 5]}}})
    model = spec.model.build(num_classes=10, in_channels=1)
    assert model.config["name"] == "resnet14" and len(model.layer4) == 1
    assert sasa.create_model(**model.config).config == model.config


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    return write_user_module(USER_MODULE, prefix="spec_backbones", where=tmp_path,
                             monkeypatch=monkeypatch, request=request)


def study(model: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "custom", "model": model, "search": {"parameters": parameters or {"window_size": [3, 5]}}}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    return info.value.problems


def test_a_custom_builder_gets_the_set_options_only(user_module: str) -> None:
    spec = parse_spec(study({"name": f"{user_module}:net", "heads": 4}))
    assert spec.model.options() == {"heads": 4}
    net = spec.model.build(num_classes=3, in_channels=1)
    assert net.config == {"name": f"{user_module}:net", "num_classes": 3, "in_channels": 1, "heads": 4}
    assert net.attention.heads == 4 and net(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_a_custom_builders_errors_are_blamed_on_the_yaml_path(user_module: str) -> None:
    found = problems(study({"name": f"{user_module}:net"}, {"heads": [2, 3]}))  # 3 heads do not divide 8 channels
    assert any(line.startswith("search.parameters.heads:") and "heads=3" in line for line in found), found
    found = problems(study({"name": f"{user_module}:net", "backbone": "attention"}))
    assert any(line.startswith("model:") and "unknown option 'backbone'" in line for line in found), found
    found = problems(study({"name": f"{user_module}:broken"}, {"lr": [0.1, 0.2]}))
    assert any(line.startswith("model:") and "TypeError: the builder's own bug" in line for line in found), found


def test_a_stored_spec_reads_back_where_the_builder_is_not_importable() -> None:
    """A study's stored spec (report, promotion, load_results) is read without the researcher's module; the YAML
    of a new study still has to import it."""
    raw = study({"name": "no_such_module_anywhere_xyz:net", "heads": 4}, {"heads": [2, 4]})
    spec = parse_spec(raw, stored=True)
    assert spec.model.name == "no_such_module_anywhere_xyz:net" and spec.model.options() == {"heads": 4}
    with pytest.raises(SpecError, match=r"model\.name: cannot import module 'no_such_module_anywhere_xyz'"):
        parse_spec(raw)
    with pytest.raises(SpecError, match=r"model\.kernel_size"):  # everything else is still checked
        parse_spec(study({"name": "no_such_module_anywhere_xyz:net", "kernel_size": 4}), stored=True)
    names = ["no_such_module_anywhere_xyz:a", "no_such_module_anywhere_xyz:b"]  # builder variants as a parameter
    variants = parse_spec(study({"width": 0.25}, {"model.name": names}), stored=True)
    assert variants.search.parameters["model.name"].choices == names
    with pytest.raises(SpecError, match=r"search\.parameters\.model\.name"):
        parse_spec(study({"width": 0.25}, {"model.name": names}))


def test_a_custom_builder_may_use_its_own_layer_groups(user_module: str) -> None:
    spec = ModelSpec.model_validate({"name": f"{user_module}:net", "attention_groups": [5]})
    assert spec.attention_groups == [5]  # the builder judges (here: it does not take the option at all)


def test_null_options_of_a_custom_builder_are_its_own_defaults() -> None:
    stored, current = {"model": {"name": "m:f", "kernel_size": None}}, {"model": {"name": "m:f", "kernel_size": 7}}
    assert result_changes(stored, current) == ["model.kernel_size"]
    resnet = ({"model": {"name": "resnet26", "kernel_size": None}}, {"model": {"name": "resnet26", "kernel_size": 7}})
    assert result_changes(*resnet) == []


def test_a_checkpoint_of_a_custom_backbone_rebuilds_it(user_module: str) -> None:
    from platform.spec import TrainSpec
    from platform.training.classifier import SasaClassifier

    net = sasa.create_model(f"{user_module}:net", 3, in_channels=1, kernel_size=5)
    module = SasaClassifier.for_backbone(net, TrainSpec())
    rebuilt = SasaClassifier(**module.hparams)  # what load_from_checkpoint does: create_model(**model)
    rebuilt.load_state_dict(module.state_dict())
    images = torch.rand(2, 1, 8, 8)
    assert type(rebuilt.net) is type(net) and torch.allclose(rebuilt.net(images), net(images))
