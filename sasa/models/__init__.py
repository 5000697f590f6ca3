"""Backbones: the model registry (:mod:`.registry`) and its built-in bottleneck ResNet-26/38/50 (:mod:`.factory`)."""

from sasa.models.factory import LAYER_GROUPS, MODELS, PRESETS, STEMS
from sasa.models.registry import create_model, list_models, register_model
from sasa.models.resnet import Bottleneck, ResNet

__all__ = [
    "LAYER_GROUPS", "MODELS", "PRESETS", "STEMS", "Bottleneck", "ResNet", "create_model", "list_models",
    "register_model",
]
