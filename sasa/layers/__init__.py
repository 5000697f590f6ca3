"""Attention layers: the SASA k×k local self-attention layer and the attention stem."""

from sasa.layers.attention_stem import AttentionStem
from sasa.layers.sasa2d import SASA2d, set_backend

__all__ = ["AttentionStem", "SASA2d", "set_backend"]
