"""The dense (all-pairs) windowed attention against a naive per-pixel reference and the chunked window kernel."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import sasa.kernels  # noqa: F401  (registers the sasa:: custom ops)
from sasa.kernels._dense_window import MAX_ELEMENTS, MAX_RATIO, dense_window_attention, use_dense


def naive_window_attention(
    q: Tensor, k: Tensor, v: Tensor, kernel_size: int, row_bias: Tensor | None, col_bias: Tensor | None
) -> Tensor:
    """Per query pixel: softmax over the in-image keys of its k×k window of q·k (+ row_bias[dy] + col_bias[dx])."""
    height, width = q.shape[2:]
    p = kernel_size // 2
    rows = []
    for i in range(height):
        cols = []
        for j in range(width):
            window = [
                (a, b)
                for a in range(max(0, i - p), min(height, i + p + 1))
                for b in range(max(0, j - p), min(width, j + p + 1))
            ]
            a_idx, b_idx = [a for a, _ in window], [b for _, b in window]
            logits = (q[:, :, i, j, None] * k[:, :, a_idx, b_idx]).sum(1)  # (N, window)
            if row_bias is not None and col_bias is not None:
                dy, dx = [a - i + p for a in a_idx], [b - j + p for b in b_idx]
                logits = logits + row_bias[:, dy, i, j] + col_bias[:, dx, i, j]
            weights = torch.softmax(logits, 1)  # (N, window)
            cols.append((v[:, :, a_idx, b_idx] * weights[:, None, :]).sum(2))  # (N, d)
        rows.append(torch.stack(cols, 2))  # (N, d, W)
    return torch.stack(rows, 2)  # (N, d, H, W)


def chunked_window_attention(
    q: Tensor, k: Tensor, v: Tensor, kernel_size: int, row_bias: Tensor | None, col_bias: Tensor | None
) -> Tensor:
    """The torch backend's chunked window kernel (custom op, its own backward), never the dense path."""
    return torch.ops.sasa.window_attention_torch(q, k, v, row_bias, col_bias, kernel_size)[0]


def _inputs(n: int, d: int, height: int, width: int, kernel_size: int, bias: bool, seed: int) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(n, d, height, width)] * 3 + ([(n, kernel_size, height, width)] * 2 if bias else [])
    return [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in shapes]


def _run(fn, inputs: list[Tensor], kernel_size: int, grad_seed: int) -> tuple[Tensor, list[Tensor]]:
    q, k, v, *bias = inputs
    row, col = bias if bias else (None, None)
    out = fn(q, k, v, kernel_size, row, col)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed), dtype=out.dtype)
    return out, list(torch.autograd.grad(out, inputs, grad_out))


SHAPES = [(1, 1), (2, 2), (3, 5), (8, 8)]


@pytest.mark.parametrize("kernel_size", [1, 3, 5, 7, 9])
@pytest.mark.parametrize(("height", "width"), SHAPES)
@pytest.mark.parametrize("bias", [False, True])
def test_matches_naive_reference_and_chunked_kernel(kernel_size: int, height: int, width: int, bias: bool) -> None:
    seed = kernel_size * 100 + height * 10 + width
    inputs = _inputs(3, 4, height, width, kernel_size, bias, seed)
    out, grads = _run(dense_window_attention, inputs, kernel_size, seed)
    assert out.shape == (3, 4, height, width) and out.is_contiguous()
    ref_out, ref_grads = _run(naive_window_attention, inputs, kernel_size, seed)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # The chunked kernel is only ever called with windows no larger than the image's reach (ops trims them).
    if kernel_size <= 2 * max(height, width) - 1:
        win_out, win_grads = _run(chunked_window_attention, inputs, kernel_size, seed)
        torch.testing.assert_close(out, win_out, rtol=1e-10, atol=1e-10)
        for got, want in zip(grads, win_grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_padding_is_masked_not_zero() -> None:
    # Constant keys and values: every in-image key gets the same weight, so a masked window returns v exactly,
    # while zero padding would pull border pixels towards 0.
    v = torch.full((2, 3, 4, 6), 2.5, dtype=torch.float64)
    q = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    k = torch.ones(2, 3, 4, 6, dtype=torch.float64)
    torch.testing.assert_close(dense_window_attention(q, k, v, 5), v)


def test_float32_matches_float64() -> None:
    inputs = _inputs(8, 16, 6, 6, 7, True, 0)
    out64 = dense_window_attention(*inputs[:3], 7, *inputs[3:])
    out32 = dense_window_attention(*(t.float() for t in inputs[:3]), 7, *(t.float() for t in inputs[3:]))
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, out64.float(), rtol=1e-4, atol=1e-5)


def test_traces_under_torch_compile_fullgraph() -> None:
    torch._dynamo.reset()
    inputs = _inputs(2, 4, 4, 5, 3, True, 1)
    compiled = torch.compile(dense_window_attention, fullgraph=True, backend="aot_eager")
    out, grads = _run(lambda *a: compiled(*a), inputs, 3, 2)
    ref_out, ref_grads = _run(dense_window_attention, inputs, 3, 2)
    torch.testing.assert_close(out, ref_out)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_training_after_an_inference_mode_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """An evaluation under torch.inference_mode first (a notebook's predict, promotion's verification) must not
    leave cached tables that break a later training step in the same process."""
    from sasa.kernels import _dense_window

    monkeypatch.setattr(_dense_window, "_TABLES", {})
    q, k, v = (torch.randn(2, 4, 5, 6) for _ in range(3))
    bias = torch.randn(2, 3, 5, 6)
    with torch.inference_mode():
        dense_window_attention(q, k, v, 3, bias, bias.clone())
    q.requires_grad_(True)
    out = dense_window_attention(q, k, v, 3, bias.requires_grad_(True), bias.detach().clone())
    out.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_use_dense_bounds_memory() -> None:
    # The embedded studies' small maps (quarter-width ResNet-26, 16×16 digits, batch 64 × 4 heads) go dense.
    assert use_dense(256, 16, 4, 4, 7)
    assert use_dense(256, 8, 8, 8, 7)
    assert use_dense(256, 32, 2, 2, 3)
    # Maps much larger than the window do not: the all-pairs table would dwarf the k² one.
    assert not use_dense(256, 4, 16, 16, 7)
    assert not use_dense(8, 16, 32, 32, 7)
    assert not use_dense(8, 16, 56, 56, 11)
    assert not use_dense(256, 8, 8, 8, 3)
    # The configuration of the memory tests in test_sasa2d.py (B=4, 4 heads, d=8, 16×16, k=9).
    assert not use_dense(16, 8, 16, 16, 9)
    # A small map with a huge batch·heads: one (N, HW, HW) table would exceed MAX_ELEMENTS.
    assert not use_dense(MAX_ELEMENTS // 64 + 1, 8, 8, 8, 7)
    # Whenever dense is chosen, its (N, HW, HW) table is capped and within a small factor of the window's table.
    for n in (1, 64, 256, 4096):
        for size in range(1, 40):
            for ks in (1, 3, 5, 7, 9, 11, 13, 15):
                if use_dense(n, 8, size, size, ks):
                    reach = min(ks, 2 * size - 1)
                    assert n * size**4 <= MAX_ELEMENTS
                    assert size * size <= MAX_RATIO * reach * reach


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kernel_size": 4}, "kernel_size must be an odd integer >= 1, got 4"),
        ({"kernel_size": 0}, "kernel_size must be an odd integer >= 1, got 0"),
        ({"q": torch.zeros(2, 3, 4)}, "q must be 4-D (N, d, H, W)"),
        ({"k": torch.zeros(2, 3, 4, 4)}, "k must have q's shape (2, 3, 4, 5)"),
        ({"v": torch.zeros(2, 3, 5, 4)}, "v must have q's shape (2, 3, 4, 5)"),
        ({"col_bias": None}, "give both row_bias and col_bias or neither"),
        (
            {"row_bias": torch.zeros(2, 5, 4, 5)},
            "row_bias must have shape (N, kernel_size, H, W) = (2, 3, 4, 5), got (2, 5, 4, 5)",
        ),
    ],
)
def test_bad_input(change: dict, message: str) -> None:
    args = {
        "q": torch.zeros(2, 3, 4, 5),
        "k": torch.zeros(2, 3, 4, 5),
        "v": torch.zeros(2, 3, 4, 5),
        "kernel_size": 3,
        "row_bias": torch.zeros(2, 3, 4, 5),
        "col_bias": torch.zeros(2, 3, 4, 5),
    }
    args.update(change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dense_window_attention(**args)
