"""Dense (all-pairs) formulation of SASA's k×k windowed attention, for small feature maps (private).

Same maths as the chunked window kernel (``window_attention``): for every query pixel (i, j) of an (H, W) map and
every key pixel (a, b) of its k×k window (p = k // 2, |a - i| ≤ p and |b - j| ≤ p), the logit is q_ij · k_ab plus
an optional separable relative term row_bias[dy, i, j] + col_bias[dx, i, j] with dy = a - i + p, dx = b - j + p;
keys outside the image are masked out of the softmax; no 1/sqrt(d) scale (Ramachandran et al., NeurIPS 2019,
arXiv:1906.05909, eq. 2-3).

On a small map (the embedded studies' attention layers at 8×8 and 4×4) a window covers much of the image, so
instead of visiting windows it scores every query against every pixel with one batched matmul and masks the pairs
outside the window. The relative term is folded into that matmul: writing the row term of query P = (i, j) and
key Q = (a, b) as R[P, a] = row_bias[dy(i, a), i, j] (it does not depend on b) and the column term as
C[P, b] = col_bias[dx(j, b), i, j],

    logit[P, Q] = [q_P, R[P, :], C[P, :]] · [k_Q, onehot_H(a), onehot_W(b)]

so the query side gains H + W channels gathered from the biases and the key side H + W constant one-hot rows;
the matmul's backward then hands the gradients of R and C back directly (no full-size reductions). The window
and the image border ride along: a huge negative in R (C) where |a - i| > p (|b - j| > p), or, without relative
terms, a constant (HW, HW) 0 / -inf table added by ``baddbmm``. Everything is plain differentiable torch (autograd
does the backward; it traces under ``torch.compile(fullgraph=True)``).

Cost: O(N·(HW)²·(d + H + W)) time and O(N·(HW)²) memory (the softmax weights are saved for backward), against
O(N·k²·HW·d) and O(N·k²·HW) for the window kernel: it wins only on maps not much larger than the window, where
its handful of large ops beats the window kernel's per-chunk Python overhead. ``use_dense`` says where
(constants set by hand on the CPU; the torch backend also asks it on a GPU, where the few large ops favour the
dense path even more).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from sasa.kernels._checks import check_window_inputs

# ``use_dense`` picks the dense path only where (1) the map has at most MAX_PIXELS pixels, (2) its (N, HW, HW)
# table is at most MAX_RATIO times the window kernel's (N, k², HW) one and has at most MAX_ELEMENTS elements, and
# (3) the cost model below predicts it to be faster. Cost per batch·head entry, in ns of one CPU thread (forward +
# backward, float32; set by hand from timings at N=256 on the development machine, 2026-11-27 — no script or
# results file records them, so they are estimates; the tests check that both paths are right, not the choice):
# dense
# HW²·(DENSE_FIXED + DENSE_PER_CHANNEL·(d + H + W)), window kernel HW·k²·(WINDOW_FIXED + WINDOW_PER_CHANNEL·d),
# k clipped to the image's reach. The model ignores the window kernel's per-chunk overhead, which makes it
# favour the window kernel on the smallest maps: conservative where dense would cost more memory.
MAX_PIXELS = 256
MAX_RATIO = 3
MAX_ELEMENTS = 1 << 24
DENSE_FIXED, DENSE_PER_CHANNEL = 4.0, 0.28
WINDOW_FIXED, WINDOW_PER_CHANNEL = 10.0, 2.5


def _effective_kernel(kernel_size: int, height: int, width: int) -> int:
    """The largest window that can matter: offsets |dy| ≥ max(H, W) never land in the image."""
    return min(kernel_size, 2 * max(height, width) - 1)


def use_dense(n: int, d: int, height: int, width: int, kernel_size: int) -> bool:
    """True where ``dense_window_attention`` is the faster choice and its O(n·(HW)²) memory stays bounded.

    Args:
        n: batch · heads; d: channels per head; height, width: the feature map; kernel_size: the window k.
    """
    hw = height * width
    kk = _effective_kernel(kernel_size, height, width) ** 2
    if hw > MAX_PIXELS or hw > MAX_RATIO * kk or n * hw * hw > MAX_ELEMENTS:
        return False
    dense_cost = hw * hw * (DENSE_FIXED + DENSE_PER_CHANNEL * (d + height + width))
    window_cost = hw * kk * (WINDOW_FIXED + WINDOW_PER_CHANNEL * d)
    return dense_cost <= window_cost


class _Tables(NamedTuple):
    """Index and constant tables of one (H, W, k, device, dtype); p = k // 2.

    row_index ``(1, H, H, 1)``: [0, a, i, 0] = clip(a - i + p, 0, k - 1), the window row of key row a for query
    row i; col_index ``(1, W, 1, W)``: [0, b, 0, j] = clip(b - j + p, 0, k - 1); row_mask ``(1, H, H, 1)`` /
    col_mask ``(1, W, 1, W)``: 0 where |a - i| ≤ p (|b - j| ≤ p), else a huge finite negative (it meets the
    one-hot zeros inside a matmul, where -inf would give NaN; exp of it is exactly 0 all the same); mask
    ``(HW, HW)``: 0 / -inf for query P = (i, j), key Q = (a, b) (None when every pair is inside the window);
    onehot ``(H + W, HW)``: onehot_H(a), then onehot_W(b), of every key pixel Q = (a, b).
    """

    row_index: Tensor
    col_index: Tensor
    row_mask: Tensor
    col_mask: Tensor
    mask: Tensor | None
    onehot: Tensor


_TABLES: dict[tuple, _Tables] = {}


def _build_tables(kernel_size: int, height: int, width: int, device: torch.device, dtype: torch.dtype) -> _Tables:
    pad = kernel_size // 2
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    dy = rows[:, None] - rows[None, :] + pad  # (a, i)
    dx = cols[:, None] - cols[None, :] + pad  # (b, j)
    row_out = (dy < 0) | (dy >= kernel_size)  # (a, i), symmetric
    col_out = (dx < 0) | (dx >= kernel_size)  # (b, j), symmetric
    # A quarter of the dtype's lowest value: the row and column terms of one pair add up to at most half of it.
    huge = torch.finfo(dtype).min / 4
    row_mask = torch.zeros(row_out.shape, device=device, dtype=dtype).masked_fill_(row_out, huge)
    col_mask = torch.zeros(col_out.shape, device=device, dtype=dtype).masked_fill_(col_out, huge)
    mask = None
    if pad < max(height, width) - 1:
        outside = row_out[:, None, :, None] | col_out[None, :, None, :]  # (i, j, a, b) by symmetry of both
        mask = torch.zeros(outside.shape, device=device, dtype=dtype).masked_fill_(outside, float("-inf"))
        mask = mask.view(height * width, height * width)  # (query P = (i, j), key Q = (a, b))
    key_rows = rows.repeat_interleave(width)  # a of key pixel Q = a·W + b
    key_cols = cols.repeat(height)  # b of key pixel Q
    onehot = torch.cat([rows[:, None] == key_rows[None, :], cols[:, None] == key_cols[None, :]]).to(dtype)
    return _Tables(
        dy.clamp(0, kernel_size - 1)[None, :, :, None],
        dx.clamp(0, kernel_size - 1)[None, :, None, :],
        row_mask[None, :, :, None],
        col_mask[None, :, None, :],
        mask,
        onehot,
    )


def _tables(kernel_size: int, height: int, width: int, like: Tensor) -> _Tables:
    """Cached ``_build_tables`` (rebuilt in the graph while ``torch.compile`` traces, where they constant-fold)."""
    if torch.compiler.is_compiling():
        return _build_tables(kernel_size, height, width, like.device, like.dtype)
    key = (kernel_size, height, width, like.device, like.dtype)
    if key not in _TABLES:
        # Never as inference tensors: a table first built under torch.inference_mode (an evaluation) and cached
        # would make every later training step fail ("Inference tensors cannot be saved for backward").
        with torch.inference_mode(False):
            _TABLES[key] = _build_tables(*key)
    return _TABLES[key]


def dense_window_attention(
    q: Tensor, k: Tensor, v: Tensor, kernel_size: int, row_bias: Tensor | None = None, col_bias: Tensor | None = None
) -> Tensor:
    """k×k windowed attention computed densely over all pixel pairs, padding masked out of the softmax.

    Args:
        q, k, v: ``(N, d, H, W)``, N = batch · heads (each entry one head of one image); any H, W ≥ 1.
        kernel_size: odd window size k ≥ 1 (may exceed the image).
        row_bias, col_bias: optional ``(N, k, H, W)`` logit terms added for window row dy / column dx; both or
            neither.

    Returns:
        ``(N, d, H, W)``, contiguous.
    """
    check_window_inputs("dense_window_attention", q, k, v, row_bias, col_bias, kernel_size)
    n, d, height, width = q.shape
    hw = height * width
    row_index, col_index, row_mask, col_mask, mask, onehot = _tables(kernel_size, height, width, q)
    q_side = q.reshape(n, d, hw)  # (N, d, HW): column P = query pixel i·W + j
    k_side = k.reshape(n, d, hw)
    if row_bias is not None:
        # R[n, a, (i, j)] = row_bias[n, a - i + p, i, j] (+ a huge negative where |a - i| > p) and likewise
        # C[n, b, (i, j)] from col_bias: the window mask rides in the matmul (clipped indices only where masked).
        rows = torch.gather(row_bias, 1, row_index.expand(n, height, height, width)) + row_mask  # (N, H, H, W)
        cols = torch.gather(col_bias, 1, col_index.expand(n, width, height, width)) + col_mask  # (N, W, H, W)
        q_side = torch.cat([q_side, rows.reshape(n, height, hw), cols.reshape(n, width, hw)], 1)  # (N, d+H+W, HW)
        k_side = torch.cat([k_side, onehot.expand(n, height + width, hw)], 1)  # (N, d+H+W, HW)
        logits = torch.bmm(q_side.transpose(1, 2), k_side)  # (N, HW, HW): [n, P, Q]
    elif mask is None:
        logits = torch.bmm(q_side.transpose(1, 2), k_side)
    else:
        logits = torch.baddbmm(mask, q_side.transpose(1, 2), k_side)
    attn = torch.softmax(logits, dim=-1)
    # (N, HW, d) = attn @ vᵀ, so that the gradient reaching the softmax is contiguous; then (N, d, H, W).
    out = torch.bmm(attn, v.reshape(n, d, hw).transpose(1, 2))
    return out.transpose(1, 2).contiguous().view(n, d, height, width)
