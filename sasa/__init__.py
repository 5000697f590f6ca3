"""sasa: Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) in pure PyTorch.

Public API: :class:`SASA2d`, :class:`AttentionStem`, :func:`create_model`, :func:`list_models`,
:func:`register_model` (the model registry, :mod:`sasa.models.registry`), :func:`count_flops`, :func:`set_backend`.
This package never imports lightning, optuna, mlflow or ``platform``, and needs triton only for
``backend="triton"`` (the attention kernels and the backend switch live in :mod:`sasa.kernels`).
"""

from sasa.flops import count_flops
from sasa.layers import AttentionStem, SASA2d, set_backend
from sasa.models import create_model, list_models, register_model

__all__ = ["AttentionStem", "SASA2d", "count_flops", "create_model", "list_models", "register_model", "set_backend"]
