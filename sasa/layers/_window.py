"""Memory-lean k×k windowed attention kernel (private) behind SASA2d.

(The attention stem's windows are non-overlapping blocks, which a plain reshape handles; it does not need this.)

For every query pixel (i, j) and window offset (dy, dx) (p = k // 2), the logit is the per-head dot product
q_ij · k_{i+dy-p, j+dx-p} plus an optional separable relative term row[dy] + col[dx]; window positions outside
the image are masked out of the softmax (never attended as zeros).

How the windows are visited without k² copies. Heads are merged into the batch axis (N = B·heads) and N is
processed in small chunks so that everything a chunk touches stays in the CPU cache. A chunk of k (or v) is
copied into a zero-bordered scratch buffer of size (n, d, H+2p, W+2p). For one window row dy, an
``as_strided`` *view* of that buffer with an extra axis dx of stride 1 gives every key of that window row for
every pixel, shape (n, d, k, H, W), without copying (the dx axis overlaps the column axis). One multiply and one
channel sum per window row then give k logits per pixel; likewise the weighted sum of values, and the backward
pass (the adjoint "scatter" to keys and values is rewritten as the same kind of gather by reading the
window-flipped gradient). Masking is separable: a window row dy is outside the image for query row i exactly
when i+dy-p is, so two (k, H, W) tables of 0 / -inf added to the logits mask the padding.

Memory: the saved tensors are q, k, v (N·d·H·W each) and the attention weights (N·k²·H·W); the scratch buffers
belong to one chunk (about CHUNK_BYTES in all), so nothing of size B·C·H·W·k² exists at any time. On images
smaller than the window, offsets that can never land in the image are dropped (a smaller window is run).
"""

from __future__ import annotations

import torch
from torch import Tensor

# Chunk size along the merged (batch·head) axis: the scratch buffers of one chunk (k-window products, padded
# copies, padded window-flipped weights) hold about this many bytes in all (at least one batch·head entry per
# chunk): with 2 threads each core works on about half of it, which stays in its L2 cache; the scratch
# memory is a constant. (Measured: 4 MiB beats 0.06–1 MiB with 2 threads, and ties with 1 thread.)
CHUNK_BYTES = 1 << 22


def _chunk_size(n: int, d: int, kernel_size: int, height: int, width: int, element_size: int) -> int:
    """Entries per chunk so that the backward pass's scratch (the larger one) fits in CHUNK_BYTES."""
    pad = kernel_size // 2
    padded = (height + 2 * pad) * (width + 2 * pad)
    kk = kernel_size * kernel_size
    per_item = (d * kernel_size * height * width + kk * height * width + (2 * d + kk) * padded) * element_size
    return max(1, min(n, CHUNK_BYTES // per_item))


def _padding_masks(kernel_size: int, height: int, width: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """0 / -inf tables (k, H, W): row_mask[dy, i, :] = -inf iff image row i+dy-p does not exist, and
    col_mask[dx, :, j] = -inf iff image column j+dx-p does not exist."""
    pad = kernel_size // 2
    offs = torch.arange(kernel_size, device=like.device) - pad

    def table(length: int) -> Tensor:
        pos = torch.arange(length, device=like.device)[None, :] + offs[:, None]  # (k, length)
        outside = (pos < 0) | (pos >= length)
        return torch.zeros(outside.shape, dtype=like.dtype, device=like.device).masked_fill_(outside, float("-inf"))

    rows = table(height)[:, :, None].expand(kernel_size, height, width)
    cols = table(width)[:, None, :].expand(kernel_size, height, width)
    return rows, cols


def _window_row(padded: Tensor, dy: int, kernel_size: int, height: int, width: int) -> Tensor:
    """View (n, c, k, H, W) of a contiguous zero-bordered (n, c, H+2p, W+2p) buffer: element (., ., dx, i, j) is
    padded[., ., i + dy, j + dx], i.e. the image pixel (i + dy - p, j + dx - p) or 0 outside the image."""
    n, c, hp, wp = padded.shape
    return padded.as_strided(
        (n, c, kernel_size, height, width), (c * hp * wp, hp * wp, 1, wp, 1), padded.storage_offset() + dy * wp
    )


def _flipped_window_row(padded: Tensor, dy: int, kernel_size: int, height: int, width: int) -> Tensor:
    """View (n, 1, k, H, W) of a zero-bordered (n, k², H+2p, W+2p) buffer holding the window-flipped weights
    f[o'] = w[k²-1-o']: element (., 0, dx, a, b) is padded[., dy·k + dx, a + dy, b + dx].

    With f flipped, f at window (dy, dx) and pixel (a+dy-p, b+dx-p) is w at window (k-1-dy, k-1-dx) of the query
    whose window puts key (a, b) there: summing over (dy, dx) this view times the window rows of a padded query
    (or output-gradient) tensor gives the gradient at key / value pixel (a, b) without any scatter.
    """
    n, kk, hp, wp = padded.shape
    return padded.as_strided(
        (n, 1, kernel_size, height, width),
        (kk * hp * wp, 0, hp * wp + 1, wp, 1),
        padded.storage_offset() + dy * kernel_size * hp * wp + dy * wp,
    )


def _gather_sum(weights: list[Tensor], values: list[Tensor], acc: Tensor, out: Tensor) -> None:
    """out = Σ_dy Σ_dx weights[dy] * values[dy] over the k window rows, accumulating in ``acc`` (n, c, k, H, W)."""
    torch.mul(weights[0], values[0], out=acc)
    for w, x in zip(weights[1:], values[1:], strict=True):
        acc.addcmul_(w, x)
    torch.sum(acc, 2, out=out)


class _Chunks:
    """Chunking of the merged (batch·head) axis and the views of per-chunk scratch buffers.

    The views are built once per chunk length (all chunks but the last share one), which keeps the Python work
    per chunk to the arithmetic itself.
    """

    def __init__(self, n_total: int, d: int, kernel_size: int, height: int, width: int, like: Tensor) -> None:
        self.size = _chunk_size(n_total, d, kernel_size, height, width, like.element_size())
        self.n_total, self.ks, self.pad = n_total, kernel_size, kernel_size // 2
        self.height, self.width = height, width
        self._cache: dict[int, dict] = {}

    def __iter__(self):
        for start in range(0, self.n_total, self.size):
            yield slice(start, min(start + self.size, self.n_total))

    def interior(self, padded: Tensor) -> Tensor:
        p = self.pad
        return padded[:, :, p : p + self.height, p : p + self.width]

    def window_rows(self, padded: Tensor) -> list[Tensor]:
        return [_window_row(padded, dy, self.ks, self.height, self.width) for dy in range(self.ks)]

    def flipped_rows(self, padded: Tensor) -> list[Tensor]:
        return [_flipped_window_row(padded, dy, self.ks, self.height, self.width) for dy in range(self.ks)]

    def blocks(self, logits: Tensor) -> list[Tensor]:
        """The k window rows of (n, k², H, W) logits: (n, k, H, W) each."""
        return [logits[:, dy * self.ks : (dy + 1) * self.ks] for dy in range(self.ks)]

    def views(self, n: int, build) -> dict:
        if n not in self._cache:
            self._cache[n] = build(n)
        return self._cache[n]


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
        # q, k, v: (N, d, H, W) with N = batch·heads; row_bias / col_bias: (N, kernel_size, H, W) or None.
        N, d, H, W = q.shape
        ks, p = kernel_size, kernel_size // 2
        row_mask, col_mask = _padding_masks(ks, H, W, q)
        if row_bias is not None:  # (N, k, H, W) logit terms for window row dy / column dx, masks included
            row_term, col_term = row_bias + row_mask, col_bias + col_mask
        else:
            row_term, col_term = row_mask.expand(N, ks, H, W), col_mask.expand(N, ks, H, W)
        chunks = _Chunks(N, d, ks, H, W, q)
        attn = q.new_empty(N, ks * ks, H, W)
        out = q.new_empty(N, d, H, W)
        logits_buf = q.new_empty(chunks.size, ks * ks, H, W)
        acc_buf = q.new_empty(chunks.size, d, ks, H, W)
        pad_buf = q.new_zeros(chunks.size, d, H + 2 * p, W + 2 * p)  # borders stay 0; interior: k, then v

        def build(n: int) -> dict:
            logits, padded = logits_buf[:n], pad_buf[:n]
            blocks = chunks.blocks(logits)
            return {
                "logits": logits,
                "logits5": logits.view(n, ks, ks, H, W),  # offset o = dy·k + dx
                "blocks": blocks,
                "weights": [b.unsqueeze(1) for b in blocks],
                "acc": acc_buf[:n],
                "interior": chunks.interior(padded),
                "rows": chunks.window_rows(padded),
            }

        for sl in chunks:
            c = chunks.views(sl.stop - sl.start, build)
            # Logits, window row by window row: logits[:, dy·k + dx] = Σ_c q[:, c] k_pad[:, c, i + dy, j + dx].
            c["interior"].copy_(k[sl])
            q_ = q[sl].unsqueeze(2)
            for block, rows in zip(c["blocks"], c["rows"], strict=True):
                torch.sum(torch.mul(q_, rows, out=c["acc"]), 1, out=block)
            c["logits5"].add_(row_term[sl].unsqueeze(2)).add_(col_term[sl].unsqueeze(1))
            _softmax_(c["logits"])
            attn[sl] = c["logits"]
            # Weighted sum of values: out[:, c] = Σ_o a[:, o] v_pad[:, c, i + dy, j + dx].
            c["interior"].copy_(v[sl])
            _gather_sum(c["weights"], c["rows"], c["acc"], out[sl])
        ctx.save_for_backward(q, k, v, attn)
        ctx.kernel_size = ks
        ctx.has_bias = row_bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        q, k, v, attn = ctx.saved_tensors
        ks = ctx.kernel_size
        p, kk = ks // 2, ks * ks
        N, d, H, W = q.shape
        grad_out = grad_out.contiguous()
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        grad_row = grad_col = None
        if ctx.has_bias:
            grad_row = q.new_empty(N, ks, H, W)
            grad_col = q.new_empty(N, ks, H, W)
        chunks = _Chunks(N, d, ks, H, W, q)
        acc_buf = q.new_empty(chunks.size, d, ks, H, W)
        grad_buf = q.new_empty(chunks.size, kk, H, W)  # dL/dattn, then dL/dlogits, of one chunk
        # Zero-bordered scratch, only interiors are written: values (a), q / k / grad_out (b), flipped weights (w).
        pad_a, pad_b = (q.new_zeros(chunks.size, d, H + 2 * p, W + 2 * p) for _ in range(2))
        pad_w = q.new_zeros(chunks.size, kk, H + 2 * p, W + 2 * p)

        def build(n: int) -> dict:
            g = grad_buf[:n]
            blocks = chunks.blocks(g)
            return {
                "g": g,
                "g5": g.view(n, ks, ks, H, W),
                "blocks": blocks,
                "weights": [b.unsqueeze(1) for b in blocks],
                "acc": acc_buf[:n],
                "interior_a": chunks.interior(pad_a[:n]),
                "interior_b": chunks.interior(pad_b[:n]),
                "interior_w": chunks.interior(pad_w[:n]),
                "rows_a": chunks.window_rows(pad_a[:n]),
                "rows_b": chunks.window_rows(pad_b[:n]),
                "flipped": chunks.flipped_rows(pad_w[:n]),
            }

        for sl in chunks:
            c = chunks.views(sl.stop - sl.start, build)
            a, g, acc, go = attn[sl], c["g"], c["acc"], grad_out[sl]
            # dL/da[:, o] = go · v shifted by o, window row by window row.
            c["interior_a"].copy_(v[sl])
            go_ = go.unsqueeze(2)
            for block, rows in zip(c["blocks"], c["rows_a"], strict=True):
                torch.sum(torch.mul(go_, rows, out=acc), 1, out=block)
            # Softmax backward: dL/dlogit = a (g - Σ_o a_o g_o); masked offsets have a = 0.
            g.sub_((a * g).sum(1, keepdim=True)).mul_(a)
            if grad_row is not None:
                torch.sum(c["g5"], 2, out=grad_row[sl])
                torch.sum(c["g5"], 1, out=grad_col[sl])
            # dL/dq = Σ_o dL/dlogit_o · k shifted by o.
            c["interior_b"].copy_(k[sl])
            _gather_sum(c["weights"], c["rows_b"], acc, grad_q[sl])
            # dL/dk at key pixel (a, b) = Σ over the queries whose window holds it: flipped gather of q.
            c["interior_b"].copy_(q[sl])
            c["interior_w"].copy_(g.flip(1))
            _gather_sum(c["flipped"], c["rows_b"], acc, grad_k[sl])
            # dL/dv likewise from the attention weights and the output gradient.
            c["interior_b"].copy_(go)
            c["interior_w"].copy_(a.flip(1))
            _gather_sum(c["flipped"], c["rows_b"], acc, grad_v[sl])
        return grad_q, grad_k, grad_v, grad_row, grad_col, None


def _softmax_(logits: Tensor) -> Tensor:
    """In-place softmax over dim 1 (no second attention-sized buffer); -inf entries become exactly 0."""
    logits.sub_(logits.amax(1, keepdim=True)).exp_()
    return logits.div_(logits.sum(1, keepdim=True))


def window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int,
    row_bias: Tensor | None = None,
    col_bias: Tensor | None = None,
) -> Tensor:
    """k×k windowed attention with padding masked out of the softmax, heads merged into the batch axis.

    Args:
        q, k, v: ``(N, d, H, W)``, N = batch · heads (each entry one head of one image).
        kernel_size: odd window size k.
        row_bias, col_bias: optional ``(N, k, H, W)`` logit terms added for window row dy / column dx (the
            separable relative-position term q·r_row[dy] + q·r_col[dx]); both or neither.

    Returns:
        ``(N, d, H, W)``.
    """
    if (row_bias is None) != (col_bias is None):
        raise ValueError("window_attention: give both row_bias and col_bias or neither")
    # Window offsets of |dy - p| >= max(H, W) are outside the image for every pixel (always masked): on images
    # smaller than the window, run the smaller window that holds every reachable offset.
    reach = 2 * max(q.shape[-2:]) - 1
    if kernel_size > reach:
        trim = (kernel_size - reach) // 2
        if row_bias is not None:
            row_bias, col_bias = row_bias[:, trim : trim + reach], col_bias[:, trim : trim + reach]
        kernel_size = reach
    return _WindowAttention.apply(q, k, v, row_bias, col_bias, kernel_size)
