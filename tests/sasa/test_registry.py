"""The model registry (sasa.models.registry): registered builders, ``module:function`` builders, the ResNet family,
``model.config`` round trips and the errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import sasa
from sasa.models import factory, registry
from tests.support.modules import write_user_module

TINY = '''
from torch import nn

import sasa


class Tiny(nn.Module):
    def __init__(self, num_classes, in_channels, kernel_size):
        super().__init__()
        self.attention = sasa.SASA2d(in_channels, 4, kernel_size=kernel_size, heads=2)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(self.attention(x).mean(dim=(2, 3)))


def tiny(num_classes, in_channels=3, kernel_size=3):
    return Tiny(num_classes, in_channels, kernel_size)


@sasa.register_model
def tiny_registered(num_classes, in_channels=3):
    return Tiny(num_classes, in_channels, 3)


NOT_CALLABLE = 3


def not_a_module(num_classes):
    return "a string"
'''


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers into a copy of the registry (and ResNet table), restored afterwards."""
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    monkeypatch.setattr(factory, "MODELS", dict(factory.MODELS))
    yield


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A researcher's module, importable under a name unique to the test."""
    return write_user_module(TINY, prefix="user_backbones", where=tmp_path,
                             monkeypatch=monkeypatch, request=request)


def test_the_resnets_are_registered() -> None:
    assert sasa.list_models() == ["resnet26", "resnet38", "resnet50"]
    model = sasa.create_model("resnet26", 10, width=0.25, small_input=True)
    assert isinstance(model, sasa.models.ResNet) and model.config["name"] == "resnet26"
    assert sasa.create_model(**model.config).config == model.config


def test_a_new_depth_is_one_table_entry() -> None:
    factory.MODELS["resnet14"] = factory.ModelSpec("resnet14", (1, 1, 1, 1))
    assert "resnet14" in sasa.list_models()
    model = sasa.create_model("resnet14", 10, width=0.25, small_input=True)
    assert model.config["name"] == "resnet14" and len(model.layer1) == 1


@pytest.mark.parametrize("form", ["bare", "named", "call"])
def test_register_model_forms(form: str) -> None:
    def small_net(num_classes: int, in_channels: int = 3, width: float = 1.0) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    if form == "bare":
        name = registry.register_model(small_net).__name__
    elif form == "named":
        name = "my_net"
        assert registry.register_model(name=name)(small_net) is small_net
    else:
        name = "my_call"
        registry.register_model(small_net, name=name)
    assert name in sasa.list_models()
    model = sasa.create_model(name, 5, width=0.5)
    assert model.config == {"name": name, "num_classes": 5, "width": 0.5}  # the options as given
    assert sasa.create_model(**model.config).config == model.config


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'resnet26' is already registered"):
        registry.register_model(lambda num_classes: nn.Identity(), name="resnet26")
    with pytest.raises(ValueError, match="invalid name 'a:b'"):
        registry.register_model(lambda num_classes: nn.Identity(), name="a:b")


def test_a_module_function_builder(user_module: str) -> None:
    name = f"{user_module}:tiny"
    model = sasa.create_model(name, 4, in_channels=1, kernel_size=5)
    assert type(model).__module__ == user_module and model.config == {
        "name": name, "num_classes": 4, "in_channels": 1, "kernel_size": 5}
    rebuilt = sasa.create_model(**model.config)
    assert rebuilt.attention.kernel_size == 5 and rebuilt(torch.zeros(2, 1, 6, 6)).shape == (2, 4)
    assert sasa.count_flops(rebuilt, (1, 1, 6, 6)) > 0
    assert "tiny_registered" in sasa.list_models()  # importing the module registered its names


def test_a_module_function_builder_on_the_meta_device(user_module: str) -> None:
    with torch.device("meta"):
        model = sasa.create_model(f"{user_module}:tiny", 4)
    assert next(model.parameters()).is_meta


@pytest.mark.parametrize(("name", "options", "expected"), [
    ("resnet51", {}, ["unknown model name 'resnet51'", "did you mean 'resnet50'", "resnet26, resnet38, resnet50",
                      "'package.module:function'"]),
    ("no_such_module_xyz:build", {}, ["cannot import module 'no_such_module_xyz'", "No module named", "PYTHONPATH"]),
    ("{mod}:tinny", {}, ["has no attribute 'tinny'", "did you mean 'tiny'", "its functions: not_a_module"]),
    ("{mod}:NOT_CALLABLE", {}, ["is a int, not callable"]),
    ("{mod}:not_a_module", {}, ["returned a str, not a torch.nn.Module"]),
    ("{mod}:tiny", {"kernal_size": 3}, ["unknown option 'kernal_size'", "did you mean 'kernel_size'",
                                         "valid options: in_channels, kernel_size"]),
    ("{mod}:", {}, ["invalid model name"]),
])
def test_clear_errors(user_module: str, name: str, options: dict, expected: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        sasa.create_model(name.format(mod=user_module), 3, **options)
    for part in expected:
        assert part in str(info.value), str(info.value)


def test_a_builders_own_errors_pass_through(user_module: str) -> None:
    with pytest.raises(ValueError, match="SASA2d"):  # an even window: SASA2d's own check
        sasa.create_model(f"{user_module}:tiny", 3, kernel_size=4)


def test_sasa_never_imports_the_platform() -> None:
    source = Path(registry.__file__).read_text()
    for forbidden in ("lightning", "optuna", "mlflow", "platform"):
        assert f"import {forbidden}" not in source and f"from {forbidden}" not in source
