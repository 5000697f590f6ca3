"""Backbones: bottleneck ResNet-26/38/50 with conv or self-attention spatial layers and stems."""

from sasa.models.factory import MODELS, PRESETS, create_model, list_models
from sasa.models.resnet import Bottleneck, ResNet

__all__ = ["MODELS", "PRESETS", "Bottleneck", "ResNet", "create_model", "list_models"]
