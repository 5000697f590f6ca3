"""create_model: architectures, paper Table 1 parameter counts, options and their validation, pickling."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from sasa import AttentionStem, SASA2d, create_model, list_models
from sasa.models import ResNet
from tests.support.limits import HANG_S

DEPTHS = ["resnet26", "resnet38", "resnet50"]
PRESETS = ["conv", "attention", "full"]
SMALL = {"small_input": True, "width": 0.25}

# Paper Table 1, parameters in millions (224×224, 1000 classes).
PAPER_PARAMS_M = {
    "resnet26": {"conv": 13.7, "attention": 10.3, "full": 10.3},
    "resnet38": {"conv": 19.6, "attention": 14.1, "full": 14.1},
    "resnet50": {"conv": 25.6, "attention": 18.0, "full": 18.0},
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_trains(model: nn.Module, size: int, num_classes: int = 10) -> None:
    """Forward + backward in train mode: right logits shape, every parameter gets a finite, non-zero gradient."""
    for module in model.modules():  # undo the zero-init of the residual gammas so every branch gets gradient
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
    torch.manual_seed(0)
    x = torch.randn(2, model.config["in_channels"], size, size)
    model.train()
    logits = model(x)
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def spatial_layers(model: ResNet, group: int) -> list[nn.Module]:
    return [block.conv2 for block in getattr(model, f"layer{group}")]


def test_list_models() -> None:
    assert list_models() == DEPTHS


@pytest.mark.parametrize("name", DEPTHS)
@pytest.mark.parametrize("backbone", PRESETS)
def test_every_preset_and_depth_trains_small(name: str, backbone: str) -> None:
    model = create_model(name, 10, backbone=backbone, **SMALL)
    attention = backbone != "conv"
    assert isinstance(model.stem, AttentionStem) == (backbone == "full")
    for group in range(1, 5):
        assert all(isinstance(layer, SASA2d) == attention for layer in spatial_layers(model, group))
    check_trains(model, 16)


@pytest.mark.parametrize("backbone", ["conv", "full"])
def test_default_downsampling_stem_on_64px(backbone: str) -> None:
    model = create_model("resnet26", 10, backbone=backbone, width=0.25)
    assert model.forward_features(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)  # 64 / 32
    check_trains(model, 64)


@pytest.mark.parametrize("backbone", ["conv", "full"])
def test_small_input_works_on_8px(backbone: str) -> None:
    model = create_model("resnet26", 10, backbone=backbone, **SMALL)
    assert model.forward_features(torch.zeros(2, 3, 8, 8)).shape == (2, 512, 1, 1)  # 8 / 8
    check_trains(model, 8)


@pytest.mark.parametrize("groups", [[3, 4], [2, 3, 4], [1]])
def test_hybrids_place_attention_in_the_chosen_groups(groups: list[int]) -> None:
    model = create_model("resnet26", 10, attention_groups=groups, **SMALL)
    assert isinstance(model.stem, nn.Sequential)
    for group in range(1, 5):
        for layer in spatial_layers(model, group):
            assert isinstance(layer, SASA2d) == (group in groups)
            if not isinstance(layer, SASA2d):
                assert isinstance(layer, nn.Conv2d) and layer.kernel_size == (3, 3)
    check_trains(model, 16)


@pytest.mark.parametrize("mixtures", [1, 4])
def test_attention_stem_mixtures(mixtures: int) -> None:
    model = create_model("resnet26", 10, backbone="full", stem_mixtures=mixtures, **SMALL)
    assert model.stem.mixtures == mixtures
    check_trains(model, 16)


def test_attention_options_reach_every_layer() -> None:
    model = create_model(
        "resnet38", 10, backbone="attention", kernel_size=5, heads=4, pos_enc="none", backend="torch", **SMALL
    )
    layers = [m for m in model.modules() if isinstance(m, SASA2d)]
    assert len(layers) == 2 + 3 + 5 + 2
    assert {(m.kernel_size, m.heads, m.pos_enc, m.backend) for m in layers} == {(5, 4, "none", "torch")}
    assert model.config["backend"] == "torch"
    full = create_model("resnet26", 10, backbone="full", backend="triton", **SMALL)  # built anywhere; runs on CUDA
    assert {m.backend for m in full.modules() if isinstance(m, SASA2d)} == {"triton"}


def test_resnet_v1_5_strides_and_shortcuts() -> None:
    conv = create_model("resnet50", 10, width=0.25)
    attn = create_model("resnet50", 10, backbone="attention", width=0.25)
    for group, stride in zip(range(1, 5), (1, 2, 2, 2), strict=True):
        first_conv, first_attn = getattr(conv, f"layer{group}")[0], getattr(attn, f"layer{group}")[0]
        assert first_conv.conv2.stride == (stride, stride)  # stride on the 3×3, not the 1×1
        assert first_conv.conv1.stride == (1, 1)
        assert first_attn.conv2.stride == stride  # attention at stride 1 + 2×2 average pool
        assert first_conv.downsample[0].stride == (stride, stride)
        assert all(block.downsample is None for block in getattr(conv, f"layer{group}")[1:])
    assert attn.forward_features(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)


def test_width_multiplier_rounds_to_multiples_of_8() -> None:
    model = create_model("resnet26", 10, width=0.3, **{"small_input": True})
    assert model.stem[0].out_channels == 16  # 64 · 0.3 = 19.2 → 16
    assert [model.layer1[0].conv2.out_channels, model.layer4[0].conv2.out_channels] == [16, 152]
    assert model.num_features == 152 * 4
    tiny = create_model("resnet26", 10, width=0.01, small_input=True)
    assert tiny.stem[0].out_channels == 8 and tiny.layer1[0].conv2.out_channels == 8


def test_initialisation() -> None:
    model = create_model("resnet26", 10, backbone="attention", **SMALL)
    assert all(torch.all(block.bn3.weight == 0) for block in model.modules() if hasattr(block, "bn3"))
    assert torch.all(model.fc.bias == 0)
    # The attention layer keeps its own initialisation (PyTorch's default: |w| <= 1/sqrt(fan_in) = 0.25 here);
    # the Kaiming fan-out init of the ResNet's own convs (std sqrt(2/16) ≈ 0.35) is not applied to it.
    assert model.layer1[0].conv2.query.weight.abs().max() <= 0.25
    assert model.layer1[0].conv1.weight.abs().max() > 0.25


def test_timm_like_interface() -> None:
    model = create_model("resnet26", 10, **SMALL).eval()
    x = torch.randn(2, 3, 16, 16)
    features = model.forward_features(x)
    assert features.shape == (2, model.num_features, 2, 2)
    pooled = model.forward_head(features, pre_logits=True)
    assert pooled.shape == (2, model.num_features)
    assert torch.allclose(model.forward_head(features), model.get_classifier()(pooled))
    assert torch.allclose(model(x), model.forward_head(features))
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.config["num_classes"] == 5
    assert model(x).shape == (2, 5)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


@pytest.mark.parametrize("name", DEPTHS)
@pytest.mark.parametrize("backbone", PRESETS)
def test_table1_parameter_counts(name: str, backbone: str) -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = create_model(name, 1000, backbone=backbone)
    assert abs(n_params(model) / 1e6 - PAPER_PARAMS_M[name][backbone]) <= 0.15


@pytest.mark.parametrize(
    ("groups", "paper_m"),
    [([2, 3, 4], 18.1), ([3, 4], 18.5), ([4], 20.8), ([1], 25.5), ([1, 2], 25.0), ([1, 2, 3], 22.7)],
)
def test_table3_hybrid_parameter_counts(groups: list[int], paper_m: float) -> None:
    with torch.device("meta"):
        model = create_model("resnet50", 1000, attention_groups=groups)
    assert abs(n_params(model) / 1e6 - paper_m) <= 0.15


def test_only_relative_embeddings_grow_with_kernel_size() -> None:
    def count(k: int, pos_enc: str) -> int:
        return n_params(create_model("resnet26", 10, backbone="attention", kernel_size=k, pos_enc=pos_enc, **SMALL))

    assert count(3, "none") == count(11, "none")
    # k · C_out relative-embedding parameters per SASA2d; Σ C_out over ResNet-26's 8 layers at width 0.25:
    assert count(11, "relative") - count(3, "relative") == (11 - 3) * (16 + 2 * 32 + 4 * 64 + 128)


def test_config_is_resolved_json_and_round_trips() -> None:
    model = create_model("resnet38", 7, backbone="attention", attention_groups=(4, 2), heads=4, **SMALL)
    config = json.loads(json.dumps(model.config))
    assert config == {
        "name": "resnet38",
        "num_classes": 7,
        "in_channels": 3,
        "backbone": None,  # the explicit groups override the preset: no preset matches any more
        "stem": "conv",
        "attention_groups": [2, 4],
        "kernel_size": 7,
        "heads": 4,
        "pos_enc": "relative",
        "backend": "auto",
        "stem_mixtures": 4,
        "width": 0.25,
        "small_input": True,
    }
    rebuilt = create_model(**config)
    assert rebuilt.config == config
    chosen = create_model("resnet26", 10, backbone="attention", backend="triton", **SMALL).config
    assert create_model(**json.loads(json.dumps(chosen))).config["backend"] == "triton"
    assert str(rebuilt) == str(model) and n_params(rebuilt) == n_params(model)
    assert create_model("resnet26", 10, backbone="full").config["backbone"] == "full"
    assert create_model("resnet26", 10, stem="attention", attention_groups=[1, 2, 3, 4]).config["backbone"] == "full"
    assert create_model("resnet26", 10).config["backbone"] == "conv"


def test_explicit_stem_overrides_preset() -> None:
    model = create_model("resnet26", 10, backbone="full", stem="conv", **SMALL)
    assert isinstance(model.stem, nn.Sequential)
    assert model.config["backbone"] == "attention"


def test_in_channels() -> None:
    model = create_model("resnet26", 3, in_channels=1, backbone="full", **SMALL)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"name": "resnet51"}, ["unknown model name 'resnet51'", "did you mean 'resnet50'", "resnet26"]),
        ({"kernal_size": 7}, ["unknown option 'kernal_size'", "did you mean 'kernel_size'", "attention_groups"]),
        ({"backbone": "ful"}, ["backbone='ful'", "did you mean 'full'", "'conv', 'attention', 'full'"]),
        ({"stem": "vit"}, ["stem='vit'", "'conv', 'attention'"]),
        ({"attention_groups": [0, 1]}, ["attention_groups=[0, 1]", "1, 2, 3, 4"]),
        ({"attention_groups": [4, 5]}, ["attention_groups=[4, 5]", "1, 2, 3, 4"]),
        ({"attention_groups": 3}, ["attention_groups=3"]),
        ({"attention_groups": [3, 3]}, ["attention_groups=[3, 3]", "distinct"]),
        ({"backbone": "attention", "heads": 6}, ["heads=6 does not divide the attention width 16 of layer group 1"]),
        ({"attention_groups": [2], "heads": 5}, ["heads=5 does not divide the attention width 32 of layer group 2"]),
        ({"backbone": "attention", "kernel_size": 4}, ["kernel_size", "4"]),
        ({"kernel_size": 0}, ["kernel_size=0"]),
        ({"width": 0}, ["width=0", "> 0"]),
        ({"width": -1.0}, ["width=-1.0"]),
        ({"width": float("nan")}, ["width=nan"]),
        ({"pos_enc": "rel"}, ["pos_enc='rel'", "'none', 'absolute', 'relative'"]),
        ({"backend": "cuda"}, ["backend='cuda'", "'auto', 'torch', 'triton'"]),
        ({"backend": "tritn"}, ["backend='tritn'", "did you mean 'triton'"]),
        ({"small_input": "yes"}, ["small_input='yes'"]),
        ({"num_classes": -1}, ["num_classes=-1"]),
        ({"in_channels": 0}, ["in_channels=0"]),
        ({"stem_mixtures": 0}, ["stem_mixtures=0"]),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, fragments: list[str]) -> None:
    arguments = {"name": "resnet26", "num_classes": 10, "width": 0.25, **kwargs}
    with pytest.raises(ValueError) as info:
        create_model(**arguments)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_whole_model_pickles_and_loads_outside_the_repo(tmp_path) -> None:
    model = create_model("resnet26", 10, backbone="full", **SMALL).eval()
    x = torch.randn(1, 3, 16, 16)
    torch.save(model, tmp_path / "model.pt")
    torch.save({"x": x, "y": model(x)}, tmp_path / "io.pt")
    script = textwrap.dedent(
        """
        import torch
        model = torch.load("model.pt", weights_only=False)
        io = torch.load("io.pt")
        assert type(model).__module__ == "sasa.models.resnet", type(model).__module__
        assert torch.allclose(model(io["x"]), io["y"], atol=1e-5)
        print(model.config["backbone"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "full"
