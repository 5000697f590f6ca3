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


# Batch chunk size is chosen so that one chunk of q (and of k, v, out) holds about this many bytes: the k² offset
# loops then revisit data that is still in the CPU's L2 cache instead of streaming it from memory k² times.
CHUNK_BYTES = 1 << 20


def _batch_chunks(q: Tensor) -> list[slice]:
    B = q.shape[0]
    per_sample = q[0].numel() * q.element_size()
    size = max(1, min(B, CHUNK_BYTES // max(per_sample, 1)))
    return [slice(b, min(b + size, B)) for b in range(0, B, size)]


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
        ks, kk = kernel_size, kernel_size * kernel_size
        offsets = _offsets(kernel_size, H, W)
        chunks = _batch_chunks(q)
        attn = q.new_empty(B, heads, kk, H, W)
        out = torch.zeros_like(v)
        # Scratch buffers reused by every chunk and offset: allocating inside the loop is slow on CPU.
        size = chunks[0].stop - chunks[0].start
        logits_buf = q.new_empty(size, heads, kk, H, W)
        prod_buf = q.new_empty(size, heads, d, H, W)
        for sl in chunks:
            qc_, kc_, vc_, oc_ = q[sl], k[sl], v[sl], out[sl]
            n = qc_.shape[0]
            logits = logits_buf[:n].fill_(float("-inf"))  # (n, heads, k², H, W); -inf = outside the image
            for o, _dy, _dx, qr, qc, kr, kc in offsets:
                prod = torch.mul(qc_[..., qr, qc], kc_[..., kr, kc], out=prod_buf[:n, ..., qr, qc])
                torch.sum(prod, 2, out=logits[:, :, o, qr, qc])
            if row_bias is not None:
                logits6 = logits.view(n, heads, ks, ks, H, W)
                logits6.add_(row_bias[sl].unsqueeze(3)).add_(col_bias[sl].unsqueeze(2))
            a = torch.ops.aten._softmax.out(logits, 2, False, out=attn[sl])
            for o, _dy, _dx, qr, qc, kr, kc in offsets:
                oc_[..., qr, qc].addcmul_(a[:, :, o, qr, qc].unsqueeze(2), vc_[..., kr, kc])
        ctx.save_for_backward(q, k, v, attn, out)
        ctx.kernel_size = kernel_size
        ctx.has_bias = row_bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        q, k, v, attn, out = ctx.saved_tensors
        kernel_size = ctx.kernel_size
        B, heads, d, H, W = q.shape
        offsets = _offsets(kernel_size, H, W)
        grad_out = grad_out.contiguous()
        grad_q, grad_k, grad_v = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        grad_row = grad_col = None
        if ctx.has_bias:
            grad_row = q.new_zeros(B, heads, kernel_size, H, W)
            grad_col = q.new_zeros(B, heads, kernel_size, H, W)
        chunks = _batch_chunks(q)
        size = chunks[0].stop - chunks[0].start
        prod_buf = q.new_empty(size, heads, d, H, W)
        dot_buf = q.new_empty(size, heads, H, W)
        for sl in chunks:
            go, qc_, kc_, vc_, a = grad_out[sl], q[sl], k[sl], v[sl], attn[sl]
            gq, gk, gv = grad_q[sl], grad_k[sl], grad_v[sl]
            # Softmax backward dL/dlogit_o = a_o (g_o - Σ_o' a_o' g_o') with g_o = go · v_o, and
            # Σ_o a_o g_o = go · Σ_o a_o v_o = go · out: one offset loop suffices. Masked offsets have a_o = 0.
            n = go.shape[0]
            s = torch.sum(torch.mul(go, out[sl], out=prod_buf[:n]), 2)  # (n, heads, H, W)
            for o, dy, dx, qr, qc, kr, kc in offsets:
                a_o = a[:, :, o, qr, qc]
                prod = torch.mul(go[..., qr, qc], vc_[..., kr, kc], out=prod_buf[:n, ..., qr, qc])
                gl = torch.sum(prod, 2, out=dot_buf[:n, ..., qr, qc]).sub_(s[..., qr, qc]).mul_(a_o)
                gv[..., kr, kc].addcmul_(a_o.unsqueeze(2), go[..., qr, qc])
                gq[..., qr, qc].addcmul_(gl.unsqueeze(2), kc_[..., kr, kc])
                gk[..., kr, kc].addcmul_(gl.unsqueeze(2), qc_[..., qr, qc])
                if grad_row is not None:
                    grad_row[sl, :, dy, qr, qc] += gl
                    grad_col[sl, :, dx, qr, qc] += gl
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
