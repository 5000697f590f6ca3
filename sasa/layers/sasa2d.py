"""Stand-alone self-attention layer (SASA), Ramachandran et al., NeurIPS 2019, arXiv:1906.05909.

For every pixel (i, j) and every head, attention over the k×k window N_k(i, j) centred on it:

    y_ij = Σ_{(a,b) ∈ N_k(i,j)} softmax_ab(logit_ijab) v_ab,   q = W_Q x, k = W_K x, v = W_V x (1×1 projections)

with logits (``pos_enc``):
    "none":      q_ij · k_ab
    "relative":  q_ij · k_ab + q_ij · r_{a-i, b-j}     (r = concat(row embedding of a-i, column embedding of b-j))
    "absolute":  q_ij · (k_ab + p_ab)                  (p: fixed 2-D sinusoidal encoding of the key's position)

Choices where the paper is silent (see README "The SASA layer"):
- The window is padded like a "same" convolution, but padding positions are *masked* out of the softmax: a pixel
  near a border attends only to the in-image part of its window (every window contains its own centre).
- No 1/sqrt(d) scaling of the logits (the paper's equation has none).
- Multi-head: the out_channels are split depth-wise into ``heads`` groups of d = out_channels / heads; q, k, v
  come from full (not grouped) 1×1 convolutions, which reproduces the paper's parameter counts.
- Relative embeddings are split *inside* each head: head h's d-dim vector r is [its d//2-dim slice of the row
  embedding, its (d - d//2)-dim slice of the column embedding], so every head sees both offsets. Stored as
  ``rel_rows`` (k, heads, d//2) and ``rel_cols`` (k, heads, d - d//2): k · out_channels parameters in total,
  initialised N(0, 1/d).
- "absolute": parameter-free sinusoidal encoding (as in Transformers) of the key pixel's absolute row in the first
  d//2 channels of every head and of its column in the other d - d//2, added to the keys; works for any H, W.
- stride 2: attention at stride 1 followed by a 2×2 average pool (ceil_mode, so odd sizes and 1×1 work).

The windowed-attention core runs on a ``backend`` (:mod:`sasa.kernels`): "torch" (plain PyTorch ops, any device),
"triton" (fused kernels: CUDA, or a CPU tensor under ``TRITON_INTERPRET=1``) or "auto" (the ``SASA_BACKEND``
environment variable if set, else Triton on CUDA when installed and torch elsewhere), resolved at every forward
from the input's device. Each backend is one ``torch.library`` custom op, opaque to ``torch.compile`` and
``torch.export``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sasa.kernels import check_backend, env_backend, window_attention
from sasa.layers._inputs import check_image_input

POS_ENCODINGS = ("none", "absolute", "relative")


def _check_positive_int(owner: str, name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer (>= 1), got {value!r}")


def sinusoidal_encoding(channels: int, length: int, device=None, dtype=None) -> Tensor:
    """Transformer sinusoid table ``(channels, length)``: channel 2i = sin(x ω_i), 2i+1 = cos(x ω_i),
    ω_i = 10000^(-2i / channels), for positions x = 0 .. length-1."""
    pos = torch.arange(length, device=device, dtype=torch.float64)
    idx = torch.arange(channels, device=device)
    omega = torch.pow(10000.0, -(2 * (idx // 2)).to(torch.float64) / max(channels, 1))
    angle = omega[:, None] * pos[None, :]  # (channels, length)
    table = torch.where((idx % 2 == 0)[:, None], torch.sin(angle), torch.cos(angle))
    return table.to(dtype or torch.get_default_dtype())


def absolute_encoding(d: int, height: int, width: int, device=None, dtype=None) -> Tensor:
    """Per-head 2-D encoding ``(d, H, W)``: rows in the first d//2 channels, columns in the other d - d//2."""
    d_row = d // 2
    rows = sinusoidal_encoding(d_row, height, device, dtype)[:, :, None].expand(d_row, height, width)
    cols = sinusoidal_encoding(d - d_row, width, device, dtype)[:, None, :].expand(d - d_row, height, width)
    return torch.cat([rows, cols], dim=0)


class SASA2d(nn.Module):
    """k×k local multi-head self-attention, a drop-in replacement for a k×k convolution.

    Input ``(B, in_channels, H, W)`` → output ``(B, out_channels, ceil(H/stride), ceil(W/stride))``.
    ``backend`` ("auto" | "torch" | "triton") picks the attention kernel (module docstring); it changes speed and
    memory, not the result (beyond floating-point rounding).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 7,
        heads: int = 8,
        pos_enc: str = "relative",
        stride: int = 1,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        _check_positive_int("SASA2d", "in_channels", in_channels)
        _check_positive_int("SASA2d", "out_channels", out_channels)
        if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"SASA2d: kernel_size must be an odd integer >= 1, got {kernel_size!r}")
        _check_positive_int("SASA2d", "heads", heads)
        if out_channels % heads != 0:
            raise ValueError(
                f"SASA2d: heads must divide out_channels={out_channels}, got heads={heads} "
                f"(valid: divisors of {out_channels})"
            )
        if pos_enc not in POS_ENCODINGS:
            raise ValueError(f"SASA2d: pos_enc must be one of {list(POS_ENCODINGS)}, got {pos_enc!r}")
        if stride not in (1, 2) or isinstance(stride, bool):
            raise ValueError(f"SASA2d: stride must be 1 or 2, got {stride!r}")
        check_backend(backend, "SASA2d")
        if backend == "auto":
            env_backend()  # a bad SASA_BACKEND fails here, at construction, not at the first forward

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.heads = heads
        self.head_dim = out_channels // heads
        self.pos_enc = pos_enc
        self.stride = stride
        self.backend = backend

        self.query = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.key = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.value = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        if pos_enc == "relative":
            d_row = self.head_dim // 2
            self.rel_rows = nn.Parameter(torch.empty(kernel_size, heads, d_row))
            self.rel_cols = nn.Parameter(torch.empty(kernel_size, heads, self.head_dim - d_row))
        else:
            self.register_parameter("rel_rows", None)
            self.register_parameter("rel_cols", None)
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True) if stride == 2 else nn.Identity()
        self.reset_parameters()

    def __setstate__(self, state: dict) -> None:
        state.setdefault("backend", "auto")  # modules pickled before the backend switch existed
        super().__setstate__(state)

    def reset_parameters(self) -> None:
        if self.rel_rows is not None:
            std = 1.0 / math.sqrt(self.head_dim)
            nn.init.normal_(self.rel_rows, std=std)
            nn.init.normal_(self.rel_cols, std=std)

    def forward(self, x: Tensor) -> Tensor:
        check_image_input("SASA2d", x, self.in_channels)
        B, _, H, W = x.shape
        heads, d = self.heads, self.head_dim
        q = self.query(x).reshape(B * heads, d, H, W)  # heads merged into the batch axis: (B·heads, d, H, W)
        k = self.key(x).reshape(B * heads, d, H, W)
        v = self.value(x).reshape(B * heads, d, H, W)
        row_bias = col_bias = None
        if self.pos_enc == "relative":
            d_row = d // 2
            # q·r_{dy,dx} = q[:d_row]·rows[dy] + q[d_row:]·cols[dx]: (B·heads, k, H, W) each, as one matmul
            # batched over (B, heads): (1, heads, k, c) @ (B, heads, c, H·W) → (B, heads, k, H·W). Batching over
            # B·heads (not only heads, as an einsum would) keeps the embeddings' gradient a sum of B·heads small
            # products instead of one product reducing over B·H·W, which a GPU runs on a handful of blocks.
            q4 = q.view(B, heads, d, H * W)
            rows = self.rel_rows.to(q.dtype).permute(1, 0, 2).unsqueeze(0)  # (1, heads, k, d_row)
            cols = self.rel_cols.to(q.dtype).permute(1, 0, 2).unsqueeze(0)  # (1, heads, k, d - d_row)
            row_bias = torch.matmul(rows, q4[:, :, :d_row]).view(B * heads, self.kernel_size, H, W)
            col_bias = torch.matmul(cols, q4[:, :, d_row:]).view(B * heads, self.kernel_size, H, W)
        elif self.pos_enc == "absolute":
            k = k + absolute_encoding(d, H, W, device=x.device, dtype=k.dtype)
        # Under autocast the projections and the bias einsums may give different dtypes: window_attention casts
        # them all to q's dtype, so the (autocast-opaque) custom op always receives one dtype.
        y = window_attention(q, k, v, self.kernel_size, row_bias, col_bias, self.backend)
        return self.pool(y.view(B, self.out_channels, H, W))

    def core_flops(self, input_shape: tuple[int, int, int, int]) -> int:
        """FLOPs (2 per multiply-add) of the attention core, which torch's flop counter cannot see.

        Counts, per output pixel of the stride-1 attention and per full k×k window (the paper's convention, even
        though border windows are partly masked): q·k (k²·C MACs), q·r if relative (k²·C MACs, as if r were
        materialised per window position; the implementation computes it separably with 2k·C MACs), and the
        weighted sum of values (k²·C MACs). The absolute encoding's addition to the keys, softmax, the 1×1
        projections and the pooling are not included.
        """
        B, _, H, W = input_shape
        terms = 3 if self.pos_enc == "relative" else 2
        return 2 * terms * B * H * W * self.kernel_size**2 * self.out_channels

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, heads={self.heads}, "
            f"pos_enc={self.pos_enc!r}, stride={self.stride}, backend={self.backend!r}"
        )


def set_backend(module: nn.Module, backend: str) -> nn.Module:
    """Set the attention kernel of every :class:`SASA2d` inside ``module`` (in place) and return ``module``.

    The backend changes speed and memory, not results, so a model trained with ``"triton"`` on a GPU can be run
    with ``"torch"`` on a CPU (e.g. to verify it there) or logged with ``"auto"`` (Triton on CUDA when installed,
    torch elsewhere). ``model.config["backend"]`` keeps what the model was built with.
    """
    check_backend(backend, "set_backend")
    for layer in module.modules():
        if isinstance(layer, SASA2d):
            layer.backend = backend
    return module
