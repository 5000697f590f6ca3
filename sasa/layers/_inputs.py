"""The input check shared by the attention layers: a clear error instead of "not enough values to unpack"."""

from __future__ import annotations

from torch import Tensor


def check_image_input(layer: str, x: object, in_channels: int) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``x`` is a ``(B, C, H, W)`` tensor with ``C == in_channels``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer}: expected a tensor of shape (B, C, H, W) with C={in_channels}, got "
                        f"{type(x).__name__}")
    if x.dim() != 4:
        hint = "; add the batch axis with x.unsqueeze(0)" if x.dim() == 3 else ""
        raise ValueError(f"{layer}: expected input of shape (B, C, H, W) with C={in_channels}, got a rank-{x.dim()} "
                         f"tensor of shape {tuple(x.shape)}{hint}")
    if x.shape[1] != in_channels:
        raise ValueError(f"{layer}: expected input of shape (B, C, H, W) with C={in_channels} (in_channels), got "
                         f"shape {tuple(x.shape)}")
