"""The fused Triton windowed-attention kernels (sasa/kernels/_triton_window.py) against the float64 reference.

Everything runs on CPU under Triton's interpreter: the launch functions interpret CPU tensors whatever
``TRITON_INTERPRET`` says and whenever triton was imported (see the module docstring), so no environment variable
is needed and test order does not matter; ``test_other_import_mode`` checks the mode (variable set or unset before
triton is imported) that this process is not in. Interpreted kernels are slow: shapes stay tiny.

Tolerances: float32 1e-5 (absolute and relative, as the kernels accumulate in fp32). bfloat16 / float16 compare
the kernels' rounded outputs with the float64 reference on the same (exactly representable) rounded inputs:
max |error| <= tol · max |reference| per tensor with tol = 4e-2 for bfloat16 (8-bit mantissa: the outputs are
rounded, and the backward reuses the rounded ``out`` for delta = Σ grad_out · out, where dS = p · (dP - delta)
cancels) and 5e-3 for float16.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton.language as tl
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from triton.runtime.interpreter import InterpretedFunction

from sasa.kernels import _triton_window
from sasa.kernels._torch_window import torch_window_backward, torch_window_forward
from sasa.kernels._triton_window import block_sizes, triton_window_backward, triton_window_forward
from tests.sasa.reference import window_reference
from tests.support.limits import HANG_S

ROOT = Path(__file__).resolve().parents[2]


def _inputs(n: int, d: int, h: int, w: int, k: int, bias: bool, dtype: torch.dtype, seed: int = 0) -> list:
    gen = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(n, d, h, w, generator=gen) for _ in range(3)]
    if bias:
        tensors += [torch.randn(n, k, h, w, generator=gen) for _ in range(2)]
    return [t.to(dtype) for t in tensors]


def _run(tensors: list, k: int, grad_out: torch.Tensor, block_p: int | None = None) -> tuple:
    """Kernel forward and backward: (out, lse, grads without the absent bias ones)."""
    q, kk, v, *bias = tensors
    rb, cb = bias if bias else (None, None)
    out, lse = triton_window_forward(q, kk, v, rb, cb, k, block_p=block_p)
    grads = triton_window_backward(grad_out, q, kk, v, rb, cb, out, lse, k, block_p=block_p)
    assert (grads[3] is None) == (grads[4] is None) == (not bias)
    return out, lse, [g for g in grads if g is not None]


def _reference(tensors: list, k: int, grad_out: torch.Tensor) -> tuple:
    """float64 reference: (out, lse, autograd gradients of every input)."""
    leaves = [t.double().requires_grad_() for t in tensors]
    out, lse = window_reference(leaves[0], leaves[1], leaves[2], k, *leaves[3:])
    grads = torch.autograd.grad(out, leaves, grad_out.double())
    return out.detach(), lse.detach(), list(grads)


NAMES = ["out", "lse", "grad_q", "grad_k", "grad_v", "grad_row_bias", "grad_col_bias"]

# (N = batch·heads, d, H, W, kernel_size, biases, block_p): odd, non-square and smaller-than-window images;
# block_p=16 splits the image into several tiles; d=6 is not a power of two (masked channels).
CASES = [
    (1, 3, 1, 1, 3, True, None),
    (2, 5, 2, 5, 7, True, None),
    (4, 8, 5, 3, 3, False, None),
    (2, 4, 5, 7, 5, True, 16),
    (8, 2, 2, 3, 5, False, None),
    (2, 8, 4, 4, 1, True, None),
    (1, 6, 6, 5, 3, True, 16),
]


@pytest.mark.parametrize(("n", "d", "h", "w", "k", "bias", "block_p"), CASES)
def test_float32_matches_reference(n: int, d: int, h: int, w: int, k: int, bias: bool, block_p: int | None) -> None:
    tensors = _inputs(n, d, h, w, k, bias, torch.float32)
    grad_out = torch.randn(n, d, h, w, generator=torch.Generator().manual_seed(1))
    out, lse, grads = _run(tensors, k, grad_out, block_p)
    assert out.dtype == torch.float32 and lse.dtype == torch.float32
    assert out.shape == (n, d, h, w) and lse.shape == (n, h, w)
    expected = _reference(tensors, k, grad_out)
    actual = [out, lse, *grads]
    assert len(actual) == len(expected[0:2]) + len(expected[2])
    for name, a, e in zip(NAMES, actual, [expected[0], expected[1], *expected[2]], strict=False):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize(
    ("dtype", "tol", "case"),
    [
        (torch.bfloat16, 4e-2, (2, 5, 2, 5, 7, True)),
        (torch.bfloat16, 4e-2, (2, 8, 5, 6, 5, True)),
        (torch.float16, 5e-3, (2, 6, 5, 7, 3, True)),
    ],
)
def test_half_precision_matches_reference(dtype: torch.dtype, tol: float, case: tuple) -> None:
    n, d, h, w, k, bias = case
    tensors = _inputs(n, d, h, w, k, bias, dtype)
    grad_out = torch.randn(n, d, h, w, generator=torch.Generator().manual_seed(1)).to(dtype)
    out, lse, grads = _run(tensors, k, grad_out)
    assert lse.dtype == torch.float32
    expected = _reference(tensors, k, grad_out)
    for name, a, e in zip(NAMES, [out, lse, *grads], [expected[0], expected[1], *expected[2]], strict=True):
        assert a.dtype == (torch.float32 if name == "lse" else dtype), name
        error = (a.double() - e).abs().max().item()
        assert error <= tol * e.abs().max().item(), f"{name}: max error {error:.3g} vs max |ref| {e.abs().max():.3g}"


def test_matches_torch_backend_kernel() -> None:
    """Same maths as the torch backend's kernel (sasa/kernels/_torch_window.py), outputs and gradients."""
    n, d, h, w, k = 2, 4, 6, 5, 5
    q, kk, v, rb, cb = _inputs(n, d, h, w, k, True, torch.float32, seed=3)
    grad_out = torch.randn(n, d, h, w, generator=torch.Generator().manual_seed(4))
    out, lse = triton_window_forward(q, kk, v, rb, cb, k)
    grads = triton_window_backward(grad_out, q, kk, v, rb, cb, out, lse, k)
    ref_out, attn = torch_window_forward(q, kk, v, rb, cb, k)
    ref_grads = torch_window_backward(grad_out, q, kk, v, attn, k, True)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    for a, e in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_batch_axis_launched_in_slices_and_non_contiguous_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """N above the grid limit is launched in slices (limit lowered to 2 here: slices of 2, 2, 1 entries), and
    non-contiguous inputs give the same result as contiguous ones."""
    monkeypatch.setattr(_triton_window, "_MAX_GRID_N", 2)
    n, d, h, w, k = 5, 2, 3, 2, 3
    tensors = _inputs(n, d, h, w, k, True, torch.float32, seed=5)
    tensors[0] = tensors[0].transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    tensors[3] = tensors[3].transpose(0, 1).contiguous().transpose(0, 1)
    assert not tensors[0].is_contiguous() and not tensors[3].is_contiguous()
    grad_out = torch.randn(n, d, h, w, generator=torch.Generator().manual_seed(6))
    out, lse, grads = _run(tensors, k, grad_out)
    expected = _reference(tensors, k, grad_out)
    for a, e in zip([out, lse, *grads], [expected[0], expected[1], *expected[2]], strict=True):
        torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-5)


class _AllocationSizes(TorchDispatchMode):
    """Records the storage size (bytes) of every tensor any torch op returns while active."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for leaf in pytree.tree_leaves(result):
            if isinstance(leaf, torch.Tensor):
                self.nbytes.append((str(func), leaf.untyped_storage().nbytes()))
        return result


def test_nothing_k_squared_is_returned_or_allocated() -> None:
    """Forward returns only out and lse; no torch op in forward or backward makes a tensor of N·k²·H·W elements:
    the largest storages are the (N, d, H, W) gradients and the (N, k, H, W) bias gradients (and the interpreter's
    byte views of the argument storages, no larger)."""
    n, d, h, w, k = 2, 4, 5, 5, 5
    q, kk, v, rb, cb = _inputs(n, d, h, w, k, True, torch.float32)
    with _AllocationSizes() as sizes:
        result = triton_window_forward(q, kk, v, rb, cb, k)
        out, lse = result
        triton_window_backward(torch.ones_like(out), q, kk, v, rb, cb, out, lse, k)
    assert len(result) == 2 and out.shape == (n, d, h, w) and lse.shape == (n, h, w)
    assert sizes.nbytes, "the dispatch mode saw no torch op"
    largest = max(nbytes for _, nbytes in sizes.nbytes)
    assert largest <= 4 * n * max(d, k) * h * w < 4 * n * k * k * h * w, sizes.nbytes


def test_block_sizes_heuristic() -> None:
    assert block_sizes(16, 56, 56) == (128, 16)
    assert block_sizes(32, 56, 56) == (64, 32)
    assert block_sizes(5, 56, 56) == (128, 8)
    assert block_sizes(8, 1, 1) == (16, 8)  # at least 16 pixels, even for a 1×1 image


_SCRIPT = """
import torch
from sasa.kernels._triton_window import triton_window_forward
from tests.sasa.reference import window_reference
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(2, 3, 4, 5, generator=g) for _ in range(3))
out, lse = triton_window_forward(q, k, v, None, None, 3)
ref, ref_lse = window_reference(q.double(), k.double(), v.double(), 3)
torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
torch.testing.assert_close(lse.double(), ref_lse, rtol=1e-5, atol=1e-5)
print("ok")
"""


def test_other_import_mode() -> None:
    """CPU tensors run whether TRITON_INTERPRET was set before triton's import (its jit helpers interpreted) or
    not (compiled-mode helpers, which the kernels avoid): this process covers its own mode, a fresh one the other."""
    imported_interpreted = isinstance(tl.standard.sum, InterpretedFunction)  # how triton was imported here
    other = "0" if imported_interpreted else "1"
    env = {**os.environ, "TRITON_INTERPRET": other}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_S
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_bad_inputs() -> None:
    q, kk, v, rb, cb = _inputs(2, 4, 3, 3, 3, True, torch.float32)
    out, lse = triton_window_forward(q, kk, v, rb, cb, 3)
    with pytest.raises(ValueError, match="kernel_size must be an odd integer"):
        triton_window_forward(q, kk, v, None, None, 4)
    with pytest.raises(ValueError, match="kernel_size must be an odd integer"):
        triton_window_forward(q, kk, v, None, None, True)
    with pytest.raises(ValueError, match="row_bias must have shape"):
        triton_window_forward(q, kk, v, rb[:, :2], cb, 3)
    with pytest.raises(ValueError, match="col_bias must have shape"):
        triton_window_forward(q, kk, v, rb, cb[:1], 3)
    with pytest.raises(ValueError, match="both row_bias and col_bias or neither"):
        triton_window_forward(q, kk, v, rb, None, 3)
    with pytest.raises(ValueError, match="k must have q's shape"):
        triton_window_forward(q, kk[:, :3], v, None, None, 3)
    with pytest.raises(ValueError, match="q must have a dtype in"):
        triton_window_forward(q.double(), kk.double(), v.double(), None, None, 3)
    with pytest.raises(ValueError, match="v must have q's dtype"):
        triton_window_forward(q, kk, v.half(), None, None, 3)
    with pytest.raises(ValueError, match="q must be 4-D"):
        triton_window_forward(q[0], kk[0], v[0], None, None, 3)
    with pytest.raises(ValueError, match="kernel_size must be an odd integer"):
        triton_window_backward(out, q, kk, v, rb, cb, out, lse, 2)
    with pytest.raises(ValueError, match="lse must be float32"):
        triton_window_backward(out, q, kk, v, rb, cb, out, lse.double(), 3)
    with pytest.raises(ValueError, match="grad_out must have q's shape"):
        triton_window_backward(out[:1], q, kk, v, rb, cb, out, lse, 3)
