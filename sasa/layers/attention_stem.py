"""Attention stem with spatially-aware values (Ramachandran et al., NeurIPS 2019, Section 3.3).

Replaces the ResNet stem (7×7/2 conv + 3×3/2 max-pool, 4× downsampling). Every pixel attends within its
block_size × block_size non-overlapping block (blocks aligned with the max-pool that follows), then batch norm,
ReLU and a block_size × block_size max-pool (4× downsampling with the default block_size=4).

The values are a position-dependent mixture of m value projections:

    v_ab = (Σ_m p(a, b, m) W_V^m) x_ab,   p(a, b, m) = softmax_m((emb_row(a) + emb_col(b))ᵀ ν_m)

where a, b are the row / column of the pixel *inside its block*; p is shared across heads. mixtures=1 is the
plain attention stem (a single value projection, no mixing).

Choices where the paper is silent (see README "The SASA layer"):
- Logits are q·k plus the same head-split relative term as :class:`~sasa.SASA2d` (the paper builds the stem from
  that layer); offsets inside a block range over -(block_size-1) .. block_size-1, i.e. 2·block_size-1 row and
  column embeddings. No 1/sqrt(d) scaling.
- H, W that are not multiples of block_size: the input is zero-padded at the bottom/right, padded keys are masked
  out of the softmax and padded output rows/columns are cropped before batch norm; the max-pool uses ceil_mode.
- Initialisation: emb_row, emb_col ~ N(0, 1), ν_m ~ N(0, 1/(2·out_channels)) so the mixture logits have unit
  variance at init; relative embeddings ~ N(0, 1/d).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sasa.layers._inputs import check_image_input
from sasa.layers.sasa2d import _check_positive_int


class AttentionStem(nn.Module):
    """Block attention stem: ``(B, in_channels, H, W)`` → ``(B, out_channels, ceil(H/bs), ceil(W/bs))``
    with ``downsample=True`` (bs = block_size), or ``(B, out_channels, H, W)`` without."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mixtures: int = 4,
        heads: int = 4,
        block_size: int = 4,
        downsample: bool = True,
    ) -> None:
        super().__init__()
        _check_positive_int("AttentionStem", "in_channels", in_channels)
        _check_positive_int("AttentionStem", "out_channels", out_channels)
        _check_positive_int("AttentionStem", "mixtures", mixtures)
        _check_positive_int("AttentionStem", "heads", heads)
        _check_positive_int("AttentionStem", "block_size", block_size)
        if out_channels % heads != 0:
            raise ValueError(
                f"AttentionStem: heads must divide out_channels={out_channels}, got heads={heads} "
                f"(valid: divisors of {out_channels})"
            )
        if not isinstance(downsample, bool):
            raise ValueError(f"AttentionStem: downsample must be True or False, got {downsample!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mixtures = mixtures
        self.heads = heads
        self.head_dim = out_channels // heads
        self.block_size = block_size
        self.downsample = downsample

        self.query = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.key = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        # All m value projections W_V^m in one conv: output channel m·out_channels + c.
        self.value = nn.Conv2d(in_channels, out_channels * mixtures, 1, bias=False)
        d_row = self.head_dim // 2
        self.rel_rows = nn.Parameter(torch.empty(2 * block_size - 1, heads, d_row))
        self.rel_cols = nn.Parameter(torch.empty(2 * block_size - 1, heads, self.head_dim - d_row))
        if mixtures > 1:
            self.emb_row = nn.Parameter(torch.empty(block_size, out_channels))
            self.emb_col = nn.Parameter(torch.empty(block_size, out_channels))
            self.mix_embed = nn.Parameter(torch.empty(mixtures, out_channels))
        else:
            self.register_parameter("emb_row", None)
            self.register_parameter("emb_col", None)
            self.register_parameter("mix_embed", None)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(block_size, block_size, ceil_mode=True) if downsample else nn.Identity()

        # Relative offset index of key t = (a', b') seen from query s = (a, b) inside a block: (bs², bs²).
        pos = torch.arange(block_size)
        rows = pos.repeat_interleave(block_size)  # a of flattened in-block index a·bs + b
        cols = pos.repeat(block_size)
        self.register_buffer("rel_row_index", rows[None, :] - rows[:, None] + block_size - 1, persistent=False)
        self.register_buffer("rel_col_index", cols[None, :] - cols[:, None] + block_size - 1, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = 1.0 / math.sqrt(self.head_dim)
        nn.init.normal_(self.rel_rows, std=std)
        nn.init.normal_(self.rel_cols, std=std)
        if self.mix_embed is not None:
            nn.init.normal_(self.emb_row)
            nn.init.normal_(self.emb_col)
            nn.init.normal_(self.mix_embed, std=1.0 / math.sqrt(2 * self.out_channels))

    def mixture_weights(self) -> Tensor:
        """p(a, b, m) as a ``(block_size, block_size, mixtures)`` tensor (all ones when mixtures=1)."""
        bs = self.block_size
        if self.mix_embed is None:
            return self.value.weight.new_ones(bs, bs, 1)
        emb = self.emb_row[:, None, :] + self.emb_col[None, :, :]  # (bs, bs, C)
        return torch.softmax(emb @ self.mix_embed.t(), dim=-1)  # (bs, bs, m)

    def forward(self, x: Tensor) -> Tensor:
        check_image_input("AttentionStem", x, self.in_channels)
        B, _, H, W = x.shape
        bs, heads, d, C, m = self.block_size, self.heads, self.head_dim, self.out_channels, self.mixtures
        nH, nW = -(-H // bs), -(-W // bs)
        Hp, Wp = nH * bs, nW * bs
        xp = F.pad(x, (0, Wp - W, 0, Hp - H))  # zero-pad bottom/right to whole blocks

        def blocks(t: Tensor) -> Tensor:  # (B, C, Hp, Wp) → (B, heads, nH, nW, bs², d)
            t = t.view(B, heads, d, nH, bs, nW, bs).permute(0, 1, 3, 5, 4, 6, 2)
            return t.reshape(B, heads, nH, nW, bs * bs, d)

        q = blocks(self.query(xp))
        k = blocks(self.key(xp))
        values = self.value(xp).view(B, m, C, Hp, Wp)
        if m > 1:
            p = self.mixture_weights().permute(2, 0, 1).repeat(1, nH, nW)  # (m, Hp, Wp)
            v = torch.einsum("bmchw,mhw->bchw", values, p)
        else:
            v = values[:, 0]
        v = blocks(v)

        logits = q @ k.transpose(-1, -2)  # (B, heads, nH, nW, bs², bs²)
        rel = torch.cat(
            [self.rel_rows[self.rel_row_index], self.rel_cols[self.rel_col_index]], dim=-1
        )  # (bs², bs², heads, d)
        logits = logits + torch.einsum("bhyxsc,sthc->bhyxst", q, rel)
        if Hp != H or Wp != W:
            valid = torch.zeros(Hp, Wp, dtype=torch.bool, device=x.device)
            valid[:H, :W] = True
            valid = valid.view(nH, bs, nW, bs).permute(0, 2, 1, 3).reshape(nH, nW, 1, bs * bs)
            logits = logits.masked_fill(~valid, float("-inf"))
        attn = torch.softmax(logits, dim=-1)
        y = attn @ v  # (B, heads, nH, nW, bs², d)
        y = y.view(B, heads, nH, nW, bs, bs, d).permute(0, 1, 6, 2, 4, 3, 5).reshape(B, C, Hp, Wp)
        y = y[:, :, :H, :W]
        return self.pool(self.act(self.bn(y)))

    def core_flops(self, input_shape: tuple[int, int, int, int]) -> int:
        """FLOPs (2 per multiply-add) the flop counter cannot see: per (padded) pixel, q·k, q·r and the weighted
        sum over its block (block_size²·C MACs each) and, if mixtures > 1, the value mixing (m·C MACs). The 1×1
        projections (children), batch norm and pooling are not included."""
        B, _, H, W = input_shape
        bs = self.block_size
        pixels = B * (-(-H // bs) * bs) * (-(-W // bs) * bs)
        macs = 3 * pixels * bs * bs * self.out_channels
        if self.mixtures > 1:
            macs += pixels * self.mixtures * self.out_channels
        return 2 * macs

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, mixtures={self.mixtures}, heads={self.heads}, "
            f"block_size={self.block_size}, downsample={self.downsample}"
        )
