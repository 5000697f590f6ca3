"""count_flops: 2 FLOPs per multiply-add, torch's counter for convs, analytic cores for attention."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sasa import AttentionStem, SASA2d, count_flops, create_model

# Paper Table 1, GFLOPs at 224×224 (one multiply-add = 2 FLOPs).
PAPER_GFLOPS = {
    "resnet26": {"conv": 4.7, "attention": 4.5, "full": 4.7},
    "resnet38": {"conv": 6.5, "attention": 5.7, "full": 6.0},
    "resnet50": {"conv": 8.2, "attention": 7.0, "full": 7.2},
}
SMALL = {"small_input": True, "width": 0.25}


@pytest.mark.parametrize("name", list(PAPER_GFLOPS))
@pytest.mark.parametrize("backbone", ["conv", "attention", "full"])
def test_table1_flops_within_10_percent(name: str, backbone: str) -> None:
    with torch.device("meta"):  # the count needs shapes only
        model = create_model(name, 1000, backbone=backbone)
    gflops = count_flops(model, (1, 3, 224, 224)) / 1e9
    assert abs(gflops / PAPER_GFLOPS[name][backbone] - 1) <= 0.10


def test_conv_model_matches_torch_flop_counter() -> None:
    model = create_model("resnet26", 10, **SMALL).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(2, 3, 16, 16))
    assert count_flops(model, (2, 3, 16, 16)) == counter.get_total_flops() > 0


def test_conv_layer_is_two_flops_per_multiply_add() -> None:
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    assert count_flops(conv, (4, 5, 6)) == 2 * (5 * 6) * 8 * 4 * 9  # (C, H, W) means batch 1


@pytest.mark.parametrize("pos_enc", ["none", "absolute", "relative"])
def test_sasa_layer_is_projections_plus_analytic_core(pos_enc: str) -> None:
    layer = SASA2d(16, 32, kernel_size=5, heads=4, pos_enc=pos_enc, stride=2)
    B, H, W = 2, 8, 6
    projections = 3 * 2 * B * H * W * 16 * 32
    terms = 3 if pos_enc == "relative" else 2  # q·k (+ q·r) + weighted sum, k² · C_out MACs per pixel each
    core = terms * 2 * B * H * W * 25 * 32
    assert count_flops(layer, (B, 16, H, W)) == projections + core


@pytest.mark.parametrize("mixtures", [1, 4])
def test_attention_stem_is_projections_plus_analytic_core(mixtures: int) -> None:
    stem = AttentionStem(3, 16, mixtures=mixtures, heads=4, block_size=4)
    B, H, W = 1, 16, 12
    projections = (2 + mixtures) * 2 * B * H * W * 3 * 16  # query, key and m value projections
    core = 3 * 2 * B * H * W * 16 * 16 + (2 * B * H * W * mixtures * 16 if mixtures > 1 else 0)
    assert count_flops(stem, (B, 3, H, W)) == projections + core


def test_kernel_size_adds_exactly_the_analytic_attention_cost() -> None:
    # ResNet-26 (blocks 1, 2, 4, 1), width 0.25 (mid widths 16/32/64/128), 16×16 input without stem downsampling.
    # Attention layers see (H·W, C): group 1: (256, 16); group 2: (256, 32) then (64, 32);
    # group 3: (64, 64) then 3 × (16, 64); group 4: (16, 128).  Σ H·W·C = 23552.
    def flops(k: int) -> int:
        return count_flops(create_model("resnet26", 10, backbone="attention", kernel_size=k, **SMALL), (2, 3, 16, 16))

    assert flops(9) - flops(7) == 2 * 3 * 2 * (81 - 49) * 23552


def test_attention_model_counts_more_than_torch_sees_and_meta_equals_cpu() -> None:
    model = create_model("resnet26", 10, backbone="full", **SMALL)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(2, 3, 16, 16))
    real = count_flops(model, (2, 3, 16, 16))
    assert real != counter.get_total_flops()
    with torch.device("meta"):
        meta_model = create_model("resnet26", 10, backbone="full", **SMALL)
    assert count_flops(meta_model, (2, 3, 16, 16)) == real


def test_restores_mode_and_leaves_no_hooks() -> None:
    model = create_model("resnet26", 10, backbone="full", **SMALL).train()
    before = count_flops(model, (1, 3, 16, 16))
    assert model.training and all(m.training for m in model.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert count_flops(model.eval(), (1, 3, 16, 16)) == before
    assert not model.training


@pytest.mark.parametrize("size", [(3, 16), (1, 3, 0, 16), (1, 3, 16, 16, 1), (1.0, 3, 16, 16)])
def test_bad_input_size(size: tuple) -> None:
    with pytest.raises(ValueError, match="input_size"):
        count_flops(create_model("resnet26", 10, **SMALL), size)
