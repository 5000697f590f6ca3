"""SASA's windowed-attention core as ``torch.library`` custom ops, and the backend switch that picks one.

Two backends compute the same k×k windowed attention (padding masked out of the softmax; Ramachandran et al.,
NeurIPS 2019, arXiv:1906.05909, eq. 2–3):

- ``"torch"``: plain PyTorch ops (:mod:`sasa.kernels._torch_window`; on small maps the all-pairs formulation of
  :mod:`sasa.kernels._dense_window`). Any device: the CPU kernel, and the CUDA fallback without Triton.
- ``"triton"``: fused Triton kernels (:mod:`sasa.kernels._triton_window`, imported on first use only), which save
  nothing with a k² factor for backward (an online softmax keeps one log-sum-exp per pixel). CUDA, or a CPU tensor
  under Triton's interpreter (``TRITON_INTERPRET=1``; slow, for tests).

Each backend is one opaque custom op with a registered autograd formula (whose backward is a second custom op)
and a fake implementation, so ``torch.compile(fullgraph=True)`` and ``torch.export`` see a single node:

    sasa::window_attention_torch(q, k, v, row_bias?, col_bias?, kernel_size) -> (out, attn)
    sasa::window_attention_torch_backward(grad_out, q, k, v, attn, kernel_size, has_bias) -> grads
    sasa::window_attention_triton(q, k, v, row_bias?, col_bias?, kernel_size) -> (out, lse)
    sasa::window_attention_triton_backward(grad_out, q, k, v, row_bias?, col_bias?, out, lse, kernel_size) -> grads

q, k, v are ``(N, d, H, W)`` with N = batch·heads, biases ``(N, kernel_size, H, W)`` (both or neither); ``attn``
is ``(N, k², H, W)``, ``lse`` ``(N, H, W)`` float32; ``grads`` is ``[grad_q, grad_k, grad_v]`` plus
``[grad_row_bias, grad_col_bias]`` when there are biases.

Backend resolution (:func:`resolve_backend`), at every call from the input's device, so a model built on the CPU
and moved to a GPU switches to Triton: an explicit ``"torch"`` / ``"triton"`` wins; ``"auto"`` defers to the
``SASA_BACKEND`` environment variable when it is set, and otherwise means Triton on CUDA when the ``triton``
package is installed and the torch backend everywhere else. Under ``torch.compile`` the choice is made while
tracing and fixed in the compiled graph.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Callable

import torch
from torch import Tensor

from sasa.kernels._checks import check_window_inputs
from sasa.kernels._dense_window import dense_window_attention, use_dense
from sasa.kernels._torch_window import torch_window_backward, torch_window_forward

__all__ = ["BACKENDS", "ENV_VAR", "check_backend", "env_backend", "resolve_backend", "window_attention"]

BACKENDS = ("auto", "torch", "triton")
ENV_VAR = "SASA_BACKEND"


def _triton_installed() -> bool:
    """Whether the triton package can be found (without importing it: ``import sasa`` never needs triton)."""
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked entry in sys.modules
        return False


TRITON_INSTALLED = _triton_installed()  # looked up once, at import (a constant for torch.compile)


def check_backend(value: object, owner: str = "backend") -> str:
    """``value`` if it is one of :data:`BACKENDS`, else a ValueError naming ``owner`` and the valid values."""
    if not isinstance(value, str) or value not in BACKENDS:
        raise ValueError(f"{owner}: backend must be one of {list(BACKENDS)}, got {value!r}")
    return value


def env_backend() -> str:
    """The ``SASA_BACKEND`` environment variable ("auto" when unset or empty), validated."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return "auto"
    if value not in BACKENDS:
        raise ValueError(f"environment variable {ENV_VAR}={value!r} is not valid; valid values: {list(BACKENDS)}")
    return value


def _interpreter_enabled() -> bool:
    """Whether TRITON_INTERPRET is set to a true value (Triton's own spelling: 1, true, on, yes)."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend ("torch" or "triton") that runs for ``backend`` on a tensor of ``device``.

    Raises ValueError for an invalid ``backend`` or ``SASA_BACKEND``, and for ``"triton"`` where it cannot run:
    triton not installed, a CPU tensor without ``TRITON_INTERPRET=1``, or a device other than CPU / CUDA.
    """
    requested = check_backend(backend, "window_attention")
    if requested == "auto":
        requested = env_backend()
    if device.type == "meta":  # shapes only (e.g. count_flops on a meta model): the fake kernels run
        return "triton" if requested == "triton" else "torch"
    if requested == "auto":
        return "triton" if device.type == "cuda" and TRITON_INSTALLED else "torch"
    if requested == "torch":
        return "torch"
    if not TRITON_INSTALLED:
        raise ValueError(
            "backend='triton' needs the triton package, which is not installed; install it "
            "(pip install triton==3.6.0) or use backend='torch'"
        )
    if device.type == "cuda":
        return "triton"
    if device.type == "cpu":
        if _interpreter_enabled():
            return "triton"
        raise ValueError(
            "backend='triton' on a CPU tensor runs only under Triton's interpreter (slow; for tests): set the "
            "environment variable TRITON_INTERPRET=1, or use backend='torch'"
        )
    raise ValueError(
        f"backend='triton' runs on CUDA (or CPU under TRITON_INTERPRET=1), not on {device.type!r}; use backend='torch'"
    )


# ---- registration: torch.library ops whose eager calls never import torch._dynamo ----
#
# ``torch.library.custom_op`` wraps every kernel in ``torch._disable_dynamo``, which imports ``torch._dynamo`` (and
# with it sympy, mpmath and ~800 modules, about 80 MiB of resident memory) at the op's first eager call. The ops are
# therefore defined with the lower-level ``torch.library`` calls (schema inferred from the same type hints, fake
# and autograd registered the same way), and each kernel is kept out of dynamo's reach only once dynamo exists:
# without ``torch._dynamo`` imported nothing can be tracing it.


_LIB = torch.library.Library("sasa", "FRAGMENT")  # owns the definitions for the life of the process


def _outside_dynamo(fn: Callable[..., object]) -> Callable[..., object]:
    """``fn``, run under ``torch._dynamo.disable`` when torch._dynamo has been imported (else nothing traces)."""
    disabled: list[Callable[..., object]] = []

    @functools.wraps(fn)
    def run(*args: object) -> object:
        dynamo = sys.modules.get("torch._dynamo")
        if dynamo is None or not hasattr(dynamo, "disable"):
            return fn(*args)
        if not disabled:
            disabled.append(dynamo.disable(fn, recursive=True))
        return disabled[0](*args)

    return run


def _define(name: str, kernel: Callable[..., object]) -> torch._ops.OpOverload:
    """``kernel`` as the op ``sasa::<name>`` (schema from its type hints, no mutation), for every device."""
    qualname = f"sasa::{name}"
    torch.library.define(qualname, torch.library.infer_schema(kernel, mutates_args=()), lib=_LIB)
    torch.library.impl(qualname, "CompositeExplicitAutograd", _outside_dynamo(kernel), lib=_LIB)
    return getattr(torch.ops.sasa, name).default


def _forward_op(
    name: str, kernel: Callable[..., tuple[Tensor, Tensor]], fake_aux: Callable[[Tensor, int], Tensor]
) -> torch._ops.OpOverload:
    """``kernel`` as the op ``sasa::<name>`` -> (out, aux); its fake gives out shaped like q and
    ``fake_aux(q, kernel_size)``, an empty tensor shaped like what the backend saves for backward."""

    def forward(
        q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None, kernel_size: int
    ) -> tuple[Tensor, Tensor]:
        return kernel(q, k, v, row_bias, col_bias, kernel_size)

    op = _define(name, forward)

    @torch.library.register_fake(op, lib=_LIB)
    def _(q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None, kernel_size: int):
        return q.new_empty(q.shape), fake_aux(q, kernel_size)

    return op


_NO_GRADS = (None,) * 6  # the forward op's inputs when out took no part in the loss


def _input_grads(grads: list[Tensor], has_bias: bool) -> tuple:
    """The forward op's input gradients (q, k, v, row_bias, col_bias, kernel_size) from a backward op's list."""
    row, col = (grads[3], grads[4]) if has_bias else (None, None)
    return grads[0], grads[1], grads[2], row, col, None


# ---- torch backend: (out, attn), attn saved for the backward ----


def _fake_attn(q: Tensor, kernel_size: int) -> Tensor:
    n, _, height, width = q.shape
    return q.new_empty(n, kernel_size * kernel_size, height, width)


_torch_op = _forward_op("window_attention_torch", torch_window_forward, _fake_attn)


def _torch_backward_kernel(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, attn: Tensor, kernel_size: int, has_bias: bool
) -> list[Tensor]:
    grads = torch_window_backward(grad_out, q, k, v, attn, kernel_size, has_bias)
    return [g for g in grads if g is not None]


_torch_backward_op = _define("window_attention_torch_backward", _torch_backward_kernel)


@torch.library.register_fake(_torch_backward_op, lib=_LIB)
def _(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, attn: Tensor, kernel_size: int, has_bias: bool):
    n, _, height, width = q.shape
    grads = [torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)]
    if has_bias:
        grads += [q.new_empty(n, kernel_size, height, width), q.new_empty(n, kernel_size, height, width)]
    return grads


def _torch_setup_context(ctx, inputs: tuple, output: tuple[Tensor, Tensor]) -> None:
    q, k, v, row_bias, _col_bias, kernel_size = inputs
    ctx.save_for_backward(q, k, v, output[1])
    ctx.kernel_size, ctx.has_bias = kernel_size, row_bias is not None
    ctx.set_materialize_grads(False)  # attn gets no gradient: no attention-sized zeros for it in backward


def _torch_backward(ctx, grad_out: Tensor | None, _grad_attn: Tensor | None) -> tuple:
    if grad_out is None:  # out took no part in the loss
        return _NO_GRADS
    q, k, v, attn = ctx.saved_tensors
    return _input_grads(_torch_backward_op(grad_out, q, k, v, attn, ctx.kernel_size, ctx.has_bias), ctx.has_bias)


torch.library.register_autograd(_torch_op, _torch_backward, setup_context=_torch_setup_context, lib=_LIB)


# ---- triton backend: (out, lse), nothing with a k² factor saved ----


def _triton_forward(
    q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None, kernel_size: int
) -> tuple[Tensor, Tensor]:
    from sasa.kernels._triton_window import triton_window_forward  # needs triton: imported on first use only

    return triton_window_forward(q, k, v, row_bias, col_bias, kernel_size)


def _fake_lse(q: Tensor, kernel_size: int) -> Tensor:
    n, _, height, width = q.shape
    return q.new_empty(n, height, width, dtype=torch.float32)


_triton_op = _forward_op("window_attention_triton", _triton_forward, _fake_lse)


def _triton_backward_kernel(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None,
    out: Tensor, lse: Tensor, kernel_size: int,
) -> list[Tensor]:  # fmt: skip
    from sasa.kernels._triton_window import triton_window_backward

    grads = triton_window_backward(grad_out.contiguous(), q, k, v, row_bias, col_bias, out, lse, kernel_size)
    return [g for g in grads if g is not None]


_triton_backward_op = _define("window_attention_triton_backward", _triton_backward_kernel)


@torch.library.register_fake(_triton_backward_op, lib=_LIB)
def _(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, row_bias: Tensor | None, col_bias: Tensor | None,
    out: Tensor, lse: Tensor, kernel_size: int,
):  # fmt: skip
    grads = [torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)]
    if row_bias is not None and col_bias is not None:
        grads += [torch.empty_like(row_bias), torch.empty_like(col_bias)]
    return grads


def _triton_setup_context(ctx, inputs: tuple, output: tuple[Tensor, Tensor]) -> None:
    q, k, v, row_bias, col_bias, kernel_size = inputs
    ctx.save_for_backward(q, k, v, row_bias, col_bias, *output)
    ctx.kernel_size = kernel_size
    ctx.set_materialize_grads(False)  # lse gets no gradient: no zeros for it in backward


def _triton_backward(ctx, grad_out: Tensor | None, _grad_lse: Tensor | None) -> tuple:
    if grad_out is None:  # out took no part in the loss
        return _NO_GRADS
    q, k, v, row_bias, col_bias, out, lse = ctx.saved_tensors
    grads = _triton_backward_op(grad_out, q, k, v, row_bias, col_bias, out, lse, ctx.kernel_size)
    return _input_grads(grads, row_bias is not None)


torch.library.register_autograd(_triton_op, _triton_backward, setup_context=_triton_setup_context, lib=_LIB)


def window_attention(
    q: Tensor, k: Tensor, v: Tensor, kernel_size: int, row_bias: Tensor | None = None,
    col_bias: Tensor | None = None, backend: str = "auto",
) -> Tensor:  # fmt: skip
    """k×k windowed attention with padding masked out of the softmax, heads merged into the batch axis.

    Args:
        q, k, v: ``(N, d, H, W)``, N = batch · heads (each entry one head of one image).
        kernel_size: odd window size k.
        row_bias, col_bias: optional ``(N, k, H, W)`` logit terms added for window row dy / column dx (the
            separable relative-position term q·r_row[dy] + q·r_col[dx]); both or neither.
        backend: "auto", "torch" or "triton" (see :func:`resolve_backend`).

    Returns:
        ``(N, d, H, W)`` in q's dtype: k, v and the biases are cast to it first (under autocast the projections
        may differ; the custom ops are opaque to autocast and always receive one dtype).

    Raises:
        ValueError: naming the argument, for a kernel_size that is not an odd int >= 1, q not 4-D, k or v not of
            q's shape, one bias without the other or a bias not ``(N, kernel_size, H, W)``, and for a backend
            that cannot run (see :func:`resolve_backend`).
    """
    check_window_inputs("window_attention", q, k, v, row_bias, col_bias, kernel_size)
    resolved = resolve_backend(backend, q.device)
    dtype = q.dtype
    k, v = k.to(dtype), v.to(dtype)
    if row_bias is not None and col_bias is not None:
        row_bias, col_bias = row_bias.to(dtype), col_bias.to(dtype)
    # Window offsets of |dy - p| >= max(H, W) are outside the image for every pixel (always masked): on images
    # smaller than the window, run the smaller window that holds every reachable offset.
    n, d, height, width = q.shape
    reach = 2 * max(height, width) - 1
    if kernel_size > reach:
        trim = (kernel_size - reach) // 2
        if row_bias is not None and col_bias is not None:
            row_bias, col_bias = row_bias[:, trim : trim + reach], col_bias[:, trim : trim + reach]
        kernel_size = reach
    if resolved == "torch":
        if use_dense(n, d, height, width, kernel_size):  # small maps: plain differentiable torch ops
            return dense_window_attention(q, k, v, kernel_size, row_bias, col_bias)
        return _torch_op(q, k, v, row_bias, col_bias, kernel_size)[0]
    if row_bias is not None and col_bias is not None:
        row_bias, col_bias = row_bias.contiguous(), col_bias.contiguous()
    return _triton_op(q.contiguous(), k.contiguous(), v.contiguous(), row_bias, col_bias, kernel_size)[0]
