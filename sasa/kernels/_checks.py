"""Argument checks shared by the windowed-attention entry points (private).

One contract for :func:`sasa.kernels.window_attention`, the dense core (:mod:`sasa.kernels._dense_window`) and
the Triton launchers (:mod:`sasa.kernels._triton_window`): q, k, v ``(N, d, H, W)`` of one shape, an odd window
size k >= 1, and optional ``(N, k, H, W)`` row / column bias terms, both or neither. Each check raises a
ValueError that starts with the caller's name (``owner``) and names the argument.
"""

from __future__ import annotations

from torch import Tensor


def check_kernel_size(owner: str, kernel_size: object) -> None:
    """``kernel_size`` must be an odd int >= 1 (bool is refused)."""
    if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{owner}: kernel_size must be an odd integer >= 1, got {kernel_size!r}")


def check_bias_pair(owner: str, row_bias: Tensor | None, col_bias: Tensor | None) -> None:
    """The relative-position terms come together: both biases or neither."""
    if (row_bias is None) != (col_bias is None):
        raise ValueError(f"{owner}: give both row_bias and col_bias or neither")


def check_window_inputs(
    owner: str, q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None, kernel_size: int
) -> None:
    """Shapes and window size: q 4-D ``(N, d, H, W)``, k and v of q's shape, biases ``(N, kernel_size, H, W)``."""
    check_kernel_size(owner, kernel_size)
    if q.dim() != 4:
        raise ValueError(f"{owner}: q must be 4-D (N, d, H, W), got shape {tuple(q.shape)}")
    for arg, t in (("k", k), ("v", v)):
        if t.shape != q.shape:
            raise ValueError(f"{owner}: {arg} must have q's shape {tuple(q.shape)}, got {tuple(t.shape)}")
    check_bias_pair(owner, row_bias, col_bias)
    n, _, height, width = q.shape
    expected = (n, kernel_size, height, width)
    for arg, t in (("row_bias", row_bias), ("col_bias", col_bias)):
        if t is not None and tuple(t.shape) != expected:
            raise ValueError(
                f"{owner}: {arg} must have shape (N, kernel_size, H, W) = {expected}, got {tuple(t.shape)}"
            )
