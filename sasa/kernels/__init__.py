"""Windowed-attention kernels behind :class:`~sasa.layers.SASA2d` and the backend switch that picks one.

``backend`` ∈ {"auto", "torch", "triton"} (:func:`resolve_backend`); the cores are registered as
``torch.library`` custom ops (``torch.ops.sasa.*``, see :mod:`sasa.kernels.ops`). Importing this package never
imports triton: the Triton kernels load on first use.
"""

from sasa.kernels.ops import BACKENDS, ENV_VAR, check_backend, env_backend, resolve_backend, window_attention

__all__ = ["BACKENDS", "ENV_VAR", "check_backend", "env_backend", "resolve_backend", "window_attention"]
