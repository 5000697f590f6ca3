"""Fused Triton kernels for SASA's k×k windowed attention core (flash-attention style; private).

The maths is that of the torch backend (:mod:`sasa.kernels._torch_window`; Ramachandran et al., NeurIPS 2019,
Eq. 2 with the padding masked): heads are merged into the batch axis, q, k, v are ``(N, d, H, W)``, p = k // 2,
and for query pixel (i, j) and window offset (dy, dx) ∈ [0, k)² the key pixel is (i+dy-p, j+dx-p) with

    logit = q_ij · k_{i+dy-p, j+dx-p}  (+ row_bias[dy, i, j] + col_bias[dx, i, j]),

a softmax over the offsets whose key pixel is inside the image (the others are masked out, not zeros) and
out_ij = Σ softmax · v_{key}. No 1/sqrt(d) scaling.

Design (kernels in :mod:`sasa.kernels._triton_window_kernels`). Every kernel runs one program per (tile of BLOCK_P
pixels, flat in the row-major H·W index) × (one batch·head entry n); grid ``(cdiv(H·W, BLOCK_P), N)``, N launched
in slices of 65535. The window offsets are visited by runtime loops over dy and dx (k = 11 is not unrolled 121
times); each iteration gathers the shifted key / value tile ``(BLOCK_D, BLOCK_P)`` with a masked load (the tile's
halo is re-read through L1/L2), BLOCK_D = next power of two >= d; tile sizes from :func:`block_sizes`.

- forward: online softmax (running max and sum, the fp32 accumulator rescaled), stores ``out`` and the
  log-sum-exp ``lse`` (N, H, W) in fp32. The attention weights are never stored.
- backward, per query (``bwd_query_kernel``): delta = Σ_c grad_out·out (stored); recomputes p = exp(logit - lse),
  dS = p·(grad_out·v_key - delta); grad_q = Σ dS·k_key, grad_row_bias[dy] = Σ_dx dS, grad_col_bias[dx] = Σ_dy dS
  (the k column sums live in a (next_pow2(k), BLOCK_P) register tile).
- backward, per key (``bwd_key_kernel``, no atomics): the query whose window puts key (a, b) at offset (dy, dx) is
  (a-dy+p, b-dx+p); its logit is recomputed from q there, k here, its biases, lse and delta, then
  grad_k += dS·q_query and grad_v += p·grad_out_query.

Memory: forward + backward allocate O(N·d·H·W) (+ O(N·k·H·W) for bias gradients, + lse and delta (N·H·W)); nothing
has a k² factor. Accumulation is fp32 for every input dtype (float32, bfloat16, float16); loads are cast to fp32
and stores cast explicitly to the output's element type. On images smaller than the window, the offsets that can
never land inside the image are skipped by the loop bounds.

CPU / interpreter. ``triton.jit`` decides between compiling and interpreting when the decorator runs, from
``TRITON_INTERPRET`` (``triton.knobs.runtime.interpret``), and ``triton.language``'s own helpers are decorated when
triton is first imported (``import sasa`` already imports triton when it is installed: ``torch.utils.flop_counter``,
used by :mod:`sasa.flops`, does). So nothing here depends on the variable at import time: the kernels are plain
functions wrapped at first launch, once per mode. CPU tensors always run under the Triton interpreter (numpy; slow,
for tests only), whatever the variable says; CUDA tensors are compiled unless ``TRITON_INTERPRET=1`` is set at
launch time (then they are interpreted too). Importing this module imports triton; :mod:`sasa.kernels` imports it
only when the triton backend runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import triton
import triton.language as tl
from torch import Tensor

from sasa.kernels._checks import check_window_inputs
from sasa.kernels._triton_window_kernels import bwd_key_kernel, bwd_query_kernel, fwd_kernel

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_NUM_WARPS = 4
# Elements of one (BLOCK_D, BLOCK_P) fp32 register tile: the kernels hold 4 (forward) to 6 (backward) of them.
_TILE_ELEMENTS = 2048
_MAX_BLOCK_P = 128
_MIN_BLOCK_P = 16
_LOOP_BOUNDS = ("dy_lo", "dy_hi", "dx_lo", "dx_hi")  # runtime loop bounds of every kernel
_NO_SPECIALIZE = ("D", "H", "W")  # see _kernels
_MAX_GRID_N = 65535  # CUDA limit of grid axis 1: larger N is launched in slices


def _interpreted_kernel(fn: Callable) -> object:
    """``fn`` under the Triton interpreter, with the loop bounds passed as plain Python ints.

    The interpreter hands runtime integers to the kernel as 1-element numpy arrays, and ``range(n)`` then needs
    ``int(array)``, which numpy >= 2.3 refuses for arrays that are not 0-d: marking the loop bounds constexpr in
    the interpreted copy (only there) keeps them Python ints. Compiled kernels keep runtime bounds.
    """
    from triton.runtime.interpreter import InterpretedFunction

    kernel = InterpretedFunction(fn)
    kernel.rewrite().__annotations__.update(dict.fromkeys(_LOOP_BOUNDS, tl.constexpr))
    return kernel


@functools.cache
def _kernels(interpret: bool) -> tuple:
    """(forward, backward-per-query, backward-per-key) launchers, compiled or interpreted."""
    if interpret:
        return (
            _interpreted_kernel(fwd_kernel),
            _interpreted_kernel(bwd_query_kernel),
            _interpreted_kernel(bwd_key_kernel),
        )
    # Triton specialises integer arguments divisible by 16 by default; for D, H, W that made the forward kernel
    # about 5x slower on an H200 (bf16, 32×32 and 64×64 images; 28×28, 31×31 and 56×56 were not affected).
    return tuple(
        triton.JITFunction(fn, do_not_specialize=_NO_SPECIALIZE)
        for fn in (fwd_kernel, bwd_query_kernel, bwd_key_kernel)
    )


def _interpreted(device: torch.device) -> bool:
    return device.type == "cpu" or bool(triton.knobs.runtime.interpret)


def _check(name: str, q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None,
           kernel_size: int) -> None:  # fmt: skip
    """ValueError naming the argument for anything outside the kernels' contract."""
    check_window_inputs(name, q, k, v, row_bias, col_bias, kernel_size)
    if q.dtype not in _DTYPES:
        raise ValueError(f"{name}: q must have a dtype in {[str(t) for t in _DTYPES]}, got {q.dtype}")
    tensors = {"k": k, "v": v}
    if row_bias is not None:
        tensors |= {"row_bias": row_bias, "col_bias": col_bias}
    for arg, t in tensors.items():
        if t.dtype != q.dtype:
            raise ValueError(f"{name}: {arg} must have q's dtype {q.dtype}, got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name}: {arg} must be on q's device {q.device}, got {t.device}")
    if q.device.type not in ("cuda", "cpu"):
        raise ValueError(f"{name}: tensors must be on a CUDA device (or CPU, interpreted), got {q.device}")


def block_sizes(d: int, height: int, width: int) -> tuple[int, int]:
    """(BLOCK_P, BLOCK_D): BLOCK_D = next power of two >= d (at least 4); BLOCK_P pixels per tile, a power of two
    in [16, 128] with BLOCK_P·BLOCK_D <= 2048 (d <= 16: 128 pixels, d = 32: 64) and no larger than the image."""
    block_d = max(4, triton.next_power_of_2(d))
    block_p = min(_MAX_BLOCK_P, max(1, _TILE_ELEMENTS // block_d), triton.next_power_of_2(height * width))
    return max(_MIN_BLOCK_P, block_p), block_d


def _loop_bounds(kernel_size: int, height: int, width: int) -> tuple[int, int, int, int]:
    """[dy_lo, dy_hi) × [dx_lo, dx_hi): the offsets that land inside the image for at least one pixel
    (|dy - p| <= H - 1); all of [0, k) unless the image is smaller than the window."""
    pad = kernel_size // 2
    return (
        max(0, pad - height + 1),
        min(kernel_size, pad + height),
        max(0, pad - width + 1),
        min(kernel_size, pad + width),
    )


def _slices(n: int) -> list[slice]:
    """Slices of the batch·head axis launched separately (grid axis 1 holds at most 65535 programs)."""
    return [slice(s, min(s + _MAX_GRID_N, n)) for s in range(0, n, _MAX_GRID_N)]


def _opt(t: Tensor | None, sl: slice) -> Tensor | None:
    return None if t is None else t[sl]


def triton_window_forward(
    q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None, kernel_size: int,
    *, block_p: int | None = None, num_warps: int = _NUM_WARPS,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Fused windowed attention forward.

    Args:
        q, k, v: ``(N, d, H, W)`` (N = batch · heads), one dtype among float32 / bfloat16 / float16, one device.
        row_bias, col_bias: optional ``(N, kernel_size, H, W)`` logit terms for window row dy / column dx (both
            or neither), q's dtype.
        kernel_size: odd window size k >= 1 (may exceed the image).
        block_p, num_warps: pixels per program (a power of two >= 16; default :func:`block_sizes`) and warps per
            program (tuning knobs for benchmarks).

    Returns:
        ``(out, lse)``: out ``(N, d, H, W)`` in q's dtype, lse ``(N, H, W)`` float32, the log-sum-exp of each
        pixel's masked logits (saved for the backward pass instead of the k² attention weights).
    """
    _check("triton_window_forward", q, k, v, row_bias, col_bias, kernel_size)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    has_bias = row_bias is not None
    if has_bias:
        row_bias, col_bias = row_bias.contiguous(), col_bias.contiguous()
    n, d, h, w = q.shape
    auto_p, block_d = block_sizes(d, h, w)
    block_p = block_p or auto_p
    out = torch.empty_like(q)
    lse = torch.empty((n, h, w), dtype=torch.float32, device=q.device)
    fwd = _kernels(_interpreted(q.device))[0]
    for sl in _slices(n):
        grid = (triton.cdiv(h * w, block_p), sl.stop - sl.start)
        fwd[grid](
            q[sl], k[sl], v[sl], _opt(row_bias, sl), _opt(col_bias, sl), out[sl], lse[sl],
            d, h, w, *_loop_bounds(kernel_size, h, w),
            K=kernel_size, HAS_BIAS=has_bias, EVEN_D=d == block_d, BLOCK_P=block_p, BLOCK_D=block_d,
            num_warps=num_warps,
        )  # fmt: skip
    return out, lse


def triton_window_backward(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None,
    out: Tensor, lse: Tensor, kernel_size: int, *, block_p: int | None = None, num_warps: int = _NUM_WARPS,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    """Gradients of :func:`triton_window_forward` from its saved ``out`` and ``lse`` (attention recomputed).

    Returns:
        ``(grad_q, grad_k, grad_v, grad_row_bias, grad_col_bias)`` in the inputs' dtypes; the bias gradients are
        None when the biases are.
    """
    _check("triton_window_backward", q, k, v, row_bias, col_bias, kernel_size)
    n, d, h, w = q.shape
    for arg, t in (("grad_out", grad_out), ("out", out)):
        if t.shape != q.shape:
            raise ValueError(
                f"triton_window_backward: {arg} must have q's shape {tuple(q.shape)}, got {tuple(t.shape)}"
            )
    if tuple(lse.shape) != (n, h, w) or lse.dtype != torch.float32:
        raise ValueError(f"triton_window_backward: lse must be float32 of shape {(n, h, w)}, got {lse.dtype} "
                         f"{tuple(lse.shape)}")  # fmt: skip
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    grad_out, out, lse = grad_out.to(q.dtype).contiguous(), out.to(q.dtype).contiguous(), lse.contiguous()
    has_bias = row_bias is not None
    grad_row = grad_col = None
    if has_bias:
        row_bias, col_bias = row_bias.contiguous(), col_bias.contiguous()
        # Rows outside the loop bounds (windows larger than the image) are never written: they stay 0.
        grad_row, grad_col = torch.zeros_like(row_bias), torch.empty_like(col_bias)
    auto_p, block_d = block_sizes(d, h, w)
    block_p = block_p or auto_p
    grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    delta = torch.empty((n, h, w), dtype=torch.float32, device=q.device)
    bounds = _loop_bounds(kernel_size, h, w)
    _, bwd_query, bwd_key = _kernels(_interpreted(q.device))
    for sl in _slices(n):
        grid = (triton.cdiv(h * w, block_p), sl.stop - sl.start)
        consts = dict(
            K=kernel_size, HAS_BIAS=has_bias, EVEN_D=d == block_d, BLOCK_P=block_p, BLOCK_D=block_d, num_warps=num_warps
        )
        bwd_query[grid](
            q[sl], k[sl], v[sl], _opt(row_bias, sl), _opt(col_bias, sl), out[sl], grad_out[sl], lse[sl], delta[sl],
            grad_q[sl], _opt(grad_row, sl), _opt(grad_col, sl), d, h, w, *bounds,
            BLOCK_K=triton.next_power_of_2(kernel_size), **consts,
        )  # fmt: skip
        bwd_key[grid](
            q[sl], k[sl], v[sl], _opt(row_bias, sl), _opt(col_bias, sl), grad_out[sl], lse[sl], delta[sl],
            grad_k[sl], grad_v[sl], d, h, w, *bounds, **consts,
        )  # fmt: skip
    return grad_q, grad_k, grad_v, grad_row, grad_col
