"""A backbone that takes raw images: per-channel normalisation inside the model.

Training normalises images with the training split's per-channel mean and standard deviation before the network
sees them. A model served to other programs (``mlflow models serve``, ``mlflow.pytorch.load_model``) should take
images as they come, values in [0, 1]: :class:`Normalized` holds the statistics as buffers (saved with the
weights) and applies ``(x - mean) / std`` before the backbone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Normalized(nn.Module):
    """``backbone((x - mean) / std)`` for raw images ``x`` of shape ``(B, C, H, W)`` with values in [0, 1]."""

    def __init__(self, backbone: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or not len(mean):
            raise ValueError(f"mean and std must be per-channel lists of one length; got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive per channel; got {list(std)}")
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))  # (1, C, 1, 1)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))  # (1, C, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"expected images of shape (B, {self.mean.shape[1]}, H, W); got {tuple(x.shape)}")
        return self.backbone((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))
