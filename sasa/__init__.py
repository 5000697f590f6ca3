"""sasa: Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) in pure PyTorch.

Public API: :class:`SASA2d`, :class:`AttentionStem`, :func:`create_model`, :func:`list_models`,
:func:`count_flops`.  This package never imports lightning, optuna, mlflow or ``platform``.
"""
