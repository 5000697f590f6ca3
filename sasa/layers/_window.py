"""Memory-lean k×k windowed attention kernel (private).

For every query pixel (i, j) and every offset (dy, dx) of the k×k window, the logit is the per-head dot product
q_ij · k_{i+dy-p, j+dx-p} (p = k // 2) plus an optional separable relative term row[dy] + col[dx]. Window
positions that fall outside the image are masked out of the softmax (never attended as zeros).

Nothing of size B·C·H·W·k² is ever built: the k² offsets are visited one at a time and each one reads a shifted
*view* (a slice) of the unpadded k / v tensors restricted to the rectangle where the shifted window is inside
the image. Only q, k, v and the attention weights (B·heads·k²·H·W) are saved for backward, and the backward is
written by hand with the same offset loop.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _offsets(kernel_size: int, height: int, width: int) -> list[tuple[int, int, int, slice, slice, slice, slice]]:
    """Offsets (o, dy, dx) with the query region and the matching key region where the window is in the image.

    Returns tuples ``(o, dy, dx, q_rows, q_cols, k_rows, k_cols)``; offsets whose region is empty are skipped.
    """
    pad = kernel_size // 2
    out = []
    for dy in range(kernel_size):
        sy = dy - pad
        r0, r1 = max(0, -sy), min(height, height - sy)
        if r0 >= r1:
            continue
        for dx in range(kernel_size):
            sx = dx - pad
            c0, c1 = max(0, -sx), min(width, width - sx)
            if c0 >= c1:
                continue
            out.append(
                (
                    dy * kernel_size + dx,
                    dy,
                    dx,
                    slice(r0, r1),
                    slice(c0, c1),
                    slice(r0 + sy, r1 + sy),
                    slice(c0 + sx, c1 + sx),
                )
            )
    return out


class _WindowAttention(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        row_bias: Tensor | None,
        col_bias: Tensor | None,
        kernel_size: int,
    ) -> Tensor:
        # q, k, v: (B, heads, d, H, W); row_bias / col_bias: (B, heads, kernel_size, H, W) or None.
        B, heads, d, H, W = q.shape
        kk = kernel_size * kernel_size
        offsets = _offsets(kernel_size, H, W)
        logits = q.new_full((B, heads, kk, H, W), float("-inf"))
        for o, dy, dx, qr, qc, kr, kc in offsets:
            dots = (q[..., qr, qc] * k[..., kr, kc]).sum(2)  # (B, heads, h', w')
            if row_bias is not None:
                dots += row_bias[:, :, dy, qr, qc] + col_bias[:, :, dx, qr, qc]
            logits[:, :, o, qr, qc] = dots
        attn = torch.softmax(logits, dim=2)
        del logits
        out = torch.zeros_like(v)
        for o, _dy, _dx, qr, qc, kr, kc in offsets:
            out[..., qr, qc].addcmul_(attn[:, :, o, qr, qc].unsqueeze(2), v[..., kr, kc])
        ctx.save_for_backward(q, k, v, attn)
        ctx.kernel_size = kernel_size
        ctx.has_bias = row_bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        q, k, v, attn = ctx.saved_tensors
        kernel_size = ctx.kernel_size
        B, heads, d, H, W = q.shape
        offsets = _offsets(kernel_size, H, W)
        grad_out = grad_out.contiguous()
        grad_attn = torch.zeros_like(attn)
        grad_v = torch.zeros_like(v)
        for o, _dy, _dx, qr, qc, kr, kc in offsets:
            grad_attn[:, :, o, qr, qc] = (grad_out[..., qr, qc] * v[..., kr, kc]).sum(2)
            grad_v[..., kr, kc].addcmul_(attn[:, :, o, qr, qc].unsqueeze(2), grad_out[..., qr, qc])
        # softmax backward: dL/dlogit = a * (g - Σ a g); masked entries have a = 0 and get 0.
        grad_logits = attn * (grad_attn - (attn * grad_attn).sum(2, keepdim=True))
        del grad_attn
        grad_q = torch.zeros_like(q)
        grad_k = torch.zeros_like(k)
        for o, _dy, _dx, qr, qc, kr, kc in offsets:
            g = grad_logits[:, :, o, qr, qc].unsqueeze(2)
            grad_q[..., qr, qc].addcmul_(g, k[..., kr, kc])
            grad_k[..., kr, kc].addcmul_(g, q[..., qr, qc])
        grad_row = grad_col = None
        if ctx.has_bias:
            g5 = grad_logits.view(B, heads, kernel_size, kernel_size, H, W)
            grad_row = g5.sum(3)
            grad_col = g5.sum(2)
        return grad_q, grad_k, grad_v, grad_row, grad_col, None


def window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int,
    row_bias: Tensor | None = None,
    col_bias: Tensor | None = None,
) -> Tensor:
    """k×k windowed multi-head attention with padding masked out of the softmax.

    Args:
        q, k, v: ``(B, heads, d, H, W)``.
        kernel_size: odd window size k.
        row_bias, col_bias: optional ``(B, heads, k, H, W)`` logit terms added for window row dy / column dx
            (the separable relative-position term q·r_row[dy] + q·r_col[dx]); both or neither.

    Returns:
        ``(B, heads, d, H, W)``.
    """
    if (row_bias is None) != (col_bias is None):
        raise ValueError("window_attention: give both row_bias and col_bias or neither")
    return _WindowAttention.apply(q, k, v, row_bias, col_bias, kernel_size)
