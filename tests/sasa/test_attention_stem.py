"""AttentionStem against the paper's spatially-aware-values equations (tests/sasa/reference.py)."""

from __future__ import annotations

import pytest
import torch

from sasa.layers import AttentionStem
from tests.sasa.reference import stem_mixture_reference, stem_reference


@pytest.mark.parametrize(
    ("mixtures", "heads", "block_size", "downsample", "H", "W"),
    [
        (4, 4, 4, True, 8, 8),
        (4, 2, 4, True, 9, 6),  # not multiples of the block: padded keys masked, ceil-mode pool
        (3, 4, 2, False, 5, 7),
        (1, 4, 4, True, 4, 5),  # plain attention stem
        (2, 1, 3, False, 1, 1),
    ],
)
def test_matches_reference(mixtures: int, heads: int, block_size: int, downsample: bool, H: int, W: int) -> None:
    torch.manual_seed(mixtures * 10 + H)
    stem = AttentionStem(3, 8, mixtures, heads, block_size, downsample)
    x = torch.randn(2, 3, H, W)
    y = stem(x)
    with torch.no_grad():
        expected = stem_reference(stem, x)
    out_hw = (-(-H // block_size), -(-W // block_size)) if downsample else (H, W)
    assert y.shape == (2, 8, *out_hw)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_mixture_weights_match_the_equation() -> None:
    torch.manual_seed(0)
    stem = AttentionStem(3, 8, mixtures=4, block_size=4)
    p = stem.mixture_weights()
    assert p.shape == (4, 4, 4)
    for a in range(4):
        for b in range(4):
            torch.testing.assert_close(p[a, b], stem_mixture_reference(stem, a, b))
    torch.testing.assert_close(p.sum(-1), torch.ones(4, 4))
    assert not torch.allclose(p[0, 0], p[3, 2])  # values depend on the position inside the block


def test_shapes_like_the_resnet_stem() -> None:
    stem = AttentionStem(3, 16, heads=4).eval()
    with torch.no_grad():
        assert stem(torch.randn(1, 3, 224, 224)).shape == (1, 16, 56, 56)  # 4× like conv7×7/2 + maxpool/2
        small = AttentionStem(3, 16, downsample=False).eval()
        assert small(torch.randn(2, 3, 16, 16)).shape == (2, 16, 16, 16)


def test_plain_attention_stem_has_a_single_value_projection() -> None:
    stem = AttentionStem(3, 8, mixtures=1)
    assert stem.value.weight.shape == (8, 3, 1, 1)
    assert stem.emb_row is None and stem.mix_embed is None
    mixed = AttentionStem(3, 8, mixtures=4)
    assert mixed.value.weight.shape == (32, 3, 1, 1)
    extra = 4 * 8 + 4 * 8 + 4 * 8  # emb_row, emb_col (block_size × C), ν (mixtures × C)
    params = sum(p.numel() for p in mixed.parameters())
    assert params == sum(p.numel() for p in stem.parameters()) + 3 * 8 * 3 + extra


def test_gradcheck_and_every_parameter_learns() -> None:
    torch.manual_seed(1)
    stem = AttentionStem(2, 4, mixtures=3, heads=2, block_size=2).double()
    x = torch.randn(2, 2, 3, 5, dtype=torch.float64, requires_grad=True)
    params = [stem.rel_rows, stem.emb_row, stem.mix_embed]

    def fn(inp: torch.Tensor, *_params: torch.Tensor) -> torch.Tensor:
        return stem(inp)

    assert torch.autograd.gradcheck(fn, (x, *params), fast_mode=True)
    stem.zero_grad()
    (stem(x) * torch.randn(2, 4, 2, 3, dtype=torch.float64)).sum().backward()
    for name, param in stem.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_attention_stays_inside_the_block() -> None:
    """Without the pool, output pixel (i, j) depends only on the input pixels of its block."""
    torch.manual_seed(2)
    stem = AttentionStem(2, 4, mixtures=2, heads=2, block_size=3, downsample=False).double().eval()
    x = torch.randn(1, 2, 5, 7, dtype=torch.float64, requires_grad=True)
    y = stem(x)
    checked = 0
    for i in range(5):
        for j in range(7):
            (grad,) = torch.autograd.grad(y[0, :, i, j].sum(), x, retain_graph=True)
            touched = grad.abs().sum(dim=(0, 1)) > 0
            expected = torch.zeros(5, 7, dtype=torch.bool)
            expected[i - i % 3 : i - i % 3 + 3, j - j % 3 : j - j % 3 + 3] = True
            # a pixel whose ReLU is off has no gradient at all; otherwise exactly its block
            assert not touched.any() or torch.equal(touched, expected), (i, j)
            checked += int(touched.any())
    assert checked >= 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mixtures": 0}, "mixtures must be a positive integer (>= 1), got 0"),
        ({"heads": 3}, "heads must divide out_channels=8, got heads=3"),
        ({"block_size": 0}, "block_size must be a positive integer (>= 1), got 0"),
        ({"out_channels": 0}, "out_channels must be a positive integer (>= 1), got 0"),
        ({"downsample": "yes"}, "downsample must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"in_channels": 3, "out_channels": 8} | kwargs
    with pytest.raises(ValueError) as info:
        AttentionStem(**args)
    assert message in str(info.value)
    assert str(info.value).startswith("AttentionStem:")


def test_core_flops_and_repr() -> None:
    stem = AttentionStem(3, 8, mixtures=4, heads=4, block_size=4)
    # per padded pixel: q·k, q·r and weighted sum over the 16-pixel block (16·C MACs each) + mixing (m·C MACs)
    pixels = 2 * 8 * 8  # 6×7 input padded to 8×8
    assert stem.core_flops((2, 3, 6, 7)) == 2 * pixels * (3 * 16 * 8 + 4 * 8)
    assert AttentionStem(3, 8, mixtures=1).core_flops((1, 3, 4, 4)) == 2 * 16 * 3 * 16 * 8
    assert stem.extra_repr() == "3, 8, mixtures=4, heads=4, block_size=4, downsample=True"
