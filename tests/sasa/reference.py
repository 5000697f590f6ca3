"""Naive references written straight from the paper's equations (loops over pixels; tiny shapes only).

They read the weights of the module under test, so their outputs must match the module's exactly up to
floating-point rounding. Nothing here is shared with the implementation (the sinusoid is re-derived too).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from sasa.layers import AttentionStem, SASA2d


def _project(weight: Tensor, x: Tensor) -> Tensor:
    """1×1 convolution without bias: (O, I, 1, 1) weight, (B, I, H, W) input → (B, O, H, W)."""
    return torch.einsum("oi,bihw->bohw", weight[:, :, 0, 0], x)


def _sinusoid(channels: int, position: int) -> list[float]:
    """Transformer encoding of one position: channel 2i = sin(x / 10000^(2i/n)), 2i+1 = cos(...)."""
    values = []
    for c in range(channels):
        angle = position / 10000.0 ** (2 * (c // 2) / channels)
        values.append(math.sin(angle) if c % 2 == 0 else math.cos(angle))
    return values


def _avg_pool_2x2(y: Tensor) -> Tensor:
    """2×2 stride-2 average over the in-image part of each window (odd sizes keep a partial last window)."""
    B, C, H, W = y.shape
    Ho, Wo = -(-H // 2), -(-W // 2)
    out = y.new_zeros(B, C, Ho, Wo)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = y[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(dim=(2, 3))
    return out


def sasa_reference(layer: SASA2d, x: Tensor) -> Tensor:
    """y_ij = Σ_{(a,b) ∈ N_k(i,j) ∩ image} softmax_ab(logit_ijab) v_ab, per head, from the paper."""
    B, _, H, W = x.shape
    heads, d, ks = layer.heads, layer.head_dim, layer.kernel_size
    p = ks // 2
    q = _project(layer.query.weight, x).view(B, heads, d, H, W)
    k = _project(layer.key.weight, x).view(B, heads, d, H, W)
    v = _project(layer.value.weight, x).view(B, heads, d, H, W)
    d_row = d // 2
    y = torch.zeros(B, heads, d, H, W, dtype=x.dtype)
    for i in range(H):
        for j in range(W):
            window = [(a, b) for a in range(i - p, i + p + 1) for b in range(j - p, j + p + 1)]
            window = [(a, b) for a, b in window if 0 <= a < H and 0 <= b < W]  # padding is masked
            logits = torch.zeros(B, heads, len(window), dtype=x.dtype)
            for n, (a, b) in enumerate(window):
                key = k[:, :, :, a, b]  # (B, heads, d)
                if layer.pos_enc == "absolute":
                    enc = torch.tensor(_sinusoid(d_row, a) + _sinusoid(d - d_row, b), dtype=x.dtype)
                    key = key + enc
                logits[:, :, n] = (q[:, :, :, i, j] * key).sum(-1)
                if layer.pos_enc == "relative":
                    r = torch.cat([layer.rel_rows[a - i + p], layer.rel_cols[b - j + p]], dim=-1)  # (heads, d)
                    logits[:, :, n] += (q[:, :, :, i, j] * r).sum(-1)
            weights = torch.softmax(logits, dim=-1)
            for n, (a, b) in enumerate(window):
                y[:, :, :, i, j] += weights[:, :, n, None] * v[:, :, :, a, b]
    y = y.reshape(B, heads * d, H, W)
    return _avg_pool_2x2(y) if layer.stride == 2 else y


def stem_mixture_reference(stem: AttentionStem, a: int, b: int) -> Tensor:
    """p(a, b, ·) = softmax_m((emb_row(a) + emb_col(b))ᵀ ν_m)."""
    if stem.mixtures == 1:
        return torch.ones(1)
    emb = stem.emb_row[a] + stem.emb_col[b]
    return torch.softmax(torch.stack([emb @ stem.mix_embed[m] for m in range(stem.mixtures)]), dim=0)


def stem_attention_reference(stem: AttentionStem, x: Tensor) -> Tensor:
    """The stem before batch norm: per-block attention with spatially-aware values v_ab = (Σ_m p W_V^m) x_ab."""
    B, _, H, W = x.shape
    bs, heads, d, C = stem.block_size, stem.heads, stem.head_dim, stem.out_channels
    q = _project(stem.query.weight, x).view(B, heads, d, H, W)
    k = _project(stem.key.weight, x).view(B, heads, d, H, W)
    w_v = stem.value.weight[:, :, 0, 0].view(stem.mixtures, C, -1)  # W_V^m: (m, C, C_in)
    v = torch.zeros(B, C, H, W, dtype=x.dtype)
    for a in range(H):
        for b in range(W):
            mix = stem_mixture_reference(stem, a % bs, b % bs)
            weight = (mix[:, None, None] * w_v).sum(0)  # Σ_m p(a, b, m) W_V^m
            v[:, :, a, b] = x[:, :, a, b] @ weight.t()
    v = v.view(B, heads, d, H, W)
    y = torch.zeros(B, heads, d, H, W, dtype=x.dtype)
    for i in range(H):
        for j in range(W):
            i0, j0 = i - i % bs, j - j % bs
            block = [(a, b) for a in range(i0, min(i0 + bs, H)) for b in range(j0, min(j0 + bs, W))]
            logits = torch.zeros(B, heads, len(block), dtype=x.dtype)
            for n, (a, b) in enumerate(block):
                r = torch.cat([stem.rel_rows[a - i + bs - 1], stem.rel_cols[b - j + bs - 1]], dim=-1)
                logits[:, :, n] = (q[:, :, :, i, j] * (k[:, :, :, a, b] + r)).sum(-1)
            weights = torch.softmax(logits, dim=-1)
            for n, (a, b) in enumerate(block):
                y[:, :, :, i, j] += weights[:, :, n, None] * v[:, :, :, a, b]
    return y.reshape(B, C, H, W)


def stem_reference(stem: AttentionStem, x: Tensor) -> Tensor:
    """Full stem: attention, then the module's own batch norm, ReLU and (if downsampling) the block max-pool."""
    y = F.relu(stem.bn(stem_attention_reference(stem, x)))
    if stem.downsample:
        y = F.max_pool2d(y, stem.block_size, stem.block_size, ceil_mode=True)
    return y


def window_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int,
    row_bias: Tensor | None = None,
    col_bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Windowed attention core from the equations, heads merged into the batch axis: (out, lse).

    q, k, v ``(N, d, H, W)``; for pixel (i, j) and offset (dy, dx) the key is (i+dy-p, j+dx-p), p = k // 2,
    logit = q_ij · k_key (+ row_bias[:, dy, i, j] + col_bias[:, dx, i, j]); offsets outside the image are left
    out of the softmax. Loops over the k² offsets on zero-padded copies, in the inputs' dtype (use float64).
    Returns out ``(N, d, H, W)`` and lse ``(N, H, W)``, the log-sum-exp of each pixel's in-image logits.
    """
    H, W = q.shape[-2:]
    p = kernel_size // 2
    k_pad = F.pad(k, (p, p, p, p))  # (N, d, H+2p, W+2p)
    v_pad = F.pad(v, (p, p, p, p))
    inside = torch.ones(H, W, dtype=torch.bool, device=q.device)
    inside = F.pad(inside, (p, p, p, p))  # (H+2p, W+2p): True on image pixels
    logits, values = [], []
    for dy in range(kernel_size):
        for dx in range(kernel_size):
            key = k_pad[:, :, dy : dy + H, dx : dx + W]  # key pixel (i+dy-p, j+dx-p) for every (i, j)
            logit = (q * key).sum(1)  # (N, H, W)
            if row_bias is not None:
                logit = logit + row_bias[:, dy] + col_bias[:, dx]
            logits.append(logit.masked_fill(~inside[dy : dy + H, dx : dx + W], float("-inf")))
            values.append(v_pad[:, :, dy : dy + H, dx : dx + W])
    logits_all = torch.stack(logits, 1)  # (N, k², H, W)
    weights = torch.softmax(logits_all, dim=1)
    out = sum(weights[:, o, None] * values[o] for o in range(len(values)))  # (N, d, H, W)
    return out, torch.logsumexp(logits_all, dim=1)
