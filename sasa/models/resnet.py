"""Bottleneck ResNets whose spatial layers are convolutions or stand-alone self-attention.

Stand-Alone Self-Attention in Vision Models (Ramachandran et al., NeurIPS 2019, arXiv:1906.05909), §4:
ResNet-26/38/50 with bottleneck blocks (expansion 4); "attention" replaces the 3×3 spatial convolution of
every bottleneck (in the chosen layer groups) by a :class:`~sasa.layers.SASA2d` layer; where the ResNet uses a
strided convolution the attention layer runs at stride 1 followed by a 2×2 average pool (``SASA2d(stride=2)``).
The stem is either the usual 7×7/2 convolution + 3×3/2 max-pool or the paper's
:class:`~sasa.layers.AttentionStem` (spatially-aware values, 4× downsampling).

Layout follows torchvision's ResNet-50 "v1.5": the stride of a layer group sits on the spatial layer of its
first block; the shortcut of a block that changes shape is a strided 1×1 convolution + batch norm.

Initialisation: Kaiming-normal (fan-out, ReLU) for the convolutions this module owns, zero bias / N(0, 0.01)
weights for the classifier, unit batch-norm gammas except the last batch norm of every bottleneck, whose gamma
starts at zero (each residual block starts as the identity, as in the TPU ResNet the paper builds on).
Attention layers keep the initialisation their own class chose: their projections are not re-initialised.

The interface mirrors timm: ``forward_features`` / ``forward_head`` / ``get_classifier`` /
``reset_classifier`` / ``num_features`` / ``num_classes``; the factory attaches the resolved options as
``model.config``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sasa.layers import AttentionStem, SASA2d

EXPANSION = 4
ATTENTION_STEM_HEADS = 4
ATTENTION_STEM_BLOCK = 4


class Bottleneck(nn.Module):
    """1×1 reduce → spatial layer (3×3 conv or SASA2d, carries the stride) → 1×1 expand, plus shortcut."""

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        stride: int = 1,
        attention: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        out_channels = mid_channels * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        if attention is None:
            self.conv2: nn.Module = nn.Conv2d(mid_channels, mid_channels, 3, stride=stride, padding=1, bias=False)
        else:  # attention at stride 1, then a 2×2 average pool when stride == 2 (inside SASA2d)
            self.conv2 = SASA2d(mid_channels, mid_channels, stride=stride, **attention)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act(self.bn1(self.conv1(x)))
        x = self.act(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        return self.act(x + shortcut)


def conv_stem(in_channels: int, out_channels: int, small_input: bool) -> nn.Sequential:
    """The ResNet stem: 7×7/2 conv + BN + ReLU + 3×3/2 max-pool (4×), or 3×3/1 conv + BN + ReLU (1×)."""
    if small_input:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


class ResNet(nn.Module):
    """Bottleneck ResNet with a conv or attention stem and per-group conv/attention spatial layers.

    Args:
        blocks: bottlenecks per layer group, e.g. ``(3, 4, 6, 3)`` for ResNet-50.
        widths: bottleneck (mid) width of each group; the group outputs ``width * 4`` channels.
        stem_width: channels produced by the stem.
        num_classes: classifier outputs; 0 gives no classifier (``forward`` returns pooled features).
        in_channels: image channels.
        stem: ``"conv"`` or ``"attention"``.
        small_input: a stem that does not downsample (for 8×8 to 32×32 images).
        attention_groups: 1-based layer groups whose spatial layers are :class:`SASA2d`.
        kernel_size, heads, pos_enc, backend: passed to every :class:`SASA2d`.
        stem_mixtures: value mixtures of the attention stem.
        zero_init_last: start every bottleneck's last batch-norm gamma at zero.
    """

    def __init__(
        self,
        blocks: Sequence[int],
        widths: Sequence[int],
        stem_width: int,
        num_classes: int,
        in_channels: int = 3,
        stem: str = "conv",
        small_input: bool = False,
        attention_groups: Sequence[int] = (),
        kernel_size: int = 7,
        heads: int = 8,
        pos_enc: str = "relative",
        backend: str = "auto",
        stem_mixtures: int = 4,
        zero_init_last: bool = True,
    ) -> None:
        super().__init__()
        if len(blocks) != 4 or len(widths) != 4:
            raise ValueError(f"blocks {tuple(blocks)} and widths {tuple(widths)} must give 4 layer groups")
        if stem == "conv":
            self.stem: nn.Module = conv_stem(in_channels, stem_width, small_input)
        elif stem == "attention":
            self.stem = AttentionStem(
                in_channels,
                stem_width,
                mixtures=stem_mixtures,
                heads=ATTENTION_STEM_HEADS,
                block_size=ATTENTION_STEM_BLOCK,
                downsample=not small_input,
            )
        else:
            raise ValueError(f"stem={stem!r} is not valid; valid values: 'conv', 'attention'")
        attention = {"kernel_size": kernel_size, "heads": heads, "pos_enc": pos_enc, "backend": backend}
        channels = stem_width
        groups: list[nn.Module] = []
        for index, (depth, width) in enumerate(zip(blocks, widths, strict=True)):
            group_attention = attention if index + 1 in attention_groups else None
            layers = []
            for block in range(depth):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(Bottleneck(channels, width, stride, group_attention))
                channels = width * EXPANSION
            groups.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = groups
        self.num_features = channels
        self.num_classes = num_classes
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = self._make_classifier(num_classes)
        self.config: dict[str, Any] = {}
        self._init_weights(zero_init_last)

    def _make_classifier(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        fc = nn.Linear(self.num_features, num_classes)
        nn.init.normal_(fc.weight, std=0.01)
        nn.init.zeros_(fc.bias)
        return fc

    def _init_weights(self, zero_init_last: bool) -> None:
        attention_types = (SASA2d, AttentionStem)
        inside_attention = {
            id(sub) for mod in self.modules() if isinstance(mod, attention_types) for sub in mod.modules()
        }
        for mod in self.modules():
            if id(mod) in inside_attention:
                continue
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)
        if zero_init_last:
            for mod in self.modules():
                if isinstance(mod, Bottleneck):
                    mod.zero_init_last()

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: no classifier)."""
        self.num_classes = num_classes
        self.fc = self._make_classifier(num_classes)
        if self.config:
            self.config["num_classes"] = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) → (B, num_features, H/32, W/32) (H/8 with ``small_input``)."""
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, num_features, h, w) → pooled (B, num_features) if ``pre_logits`` else (B, num_classes)."""
        x = self.global_pool(x).flatten(1)  # (B, C, 1, 1) → (B, C)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
