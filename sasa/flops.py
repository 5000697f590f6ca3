"""FLOPs of one forward pass, one multiply-add = 2 FLOPs (the convention of Ramachandran et al. 2019, Table 1).

Convolutions and matrix products are counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which
already counts 2 FLOPs per multiply-add.  It cannot see the true cost of an attention core: a local-window
attention may be implemented with ops it does not count (unfold, element-wise products + sums) or counts at a
padded/materialised size.  So for every attention module (anything with a ``core_flops(input_shape)``
method: :class:`~sasa.layers.SASA2d`, :class:`~sasa.layers.AttentionStem`) the FLOPs the counter saw while
that module ran are replaced by the module's analytic ``core_flops`` of the input it received, except those
of its convolution / linear descendants (the q/k/v projections), which stay as counted.

How (robust to the counter's internal module naming): forward hooks around each outermost attention module
and each of its ``nn.Conv2d``/``nn.Linear`` descendants read the counter's running total before and after
they run; the difference is what that module was charged.  Modules called several times are charged per call.
Like the counter, element-wise ops (batch norm, ReLU, softmax, pooling, residual adds) count 0 FLOPs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops"]

_PROJECTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _has_core_flops(module: nn.Module) -> bool:
    return callable(getattr(module, "core_flops", None))


def _outermost_attention(model: nn.Module) -> list[nn.Module]:
    """Modules with ``core_flops`` that are not inside another such module (the outer one accounts for them)."""
    found: list[nn.Module] = []
    covered: set[int] = set()
    for module in model.modules():  # pre-order: a parent comes before its descendants
        if id(module) in covered or not _has_core_flops(module):
            continue
        found.append(module)
        covered.update(id(sub) for sub in module.modules())
    return found


def _input_size(input_size: Sequence[int]) -> tuple[int, ...]:
    size = tuple(input_size)
    if len(size) == 3:
        size = (1, *size)
    if len(size) != 4 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(
            f"count_flops: input_size={tuple(input_size)!r} is not valid; valid values: (B, C, H, W) or "
            "(C, H, W) of positive integers"
        )
    return size


class _Meter:
    """Charges the counter's running total between a module's pre- and post-forward hook."""

    def __init__(self, counter: FlopCounterMode) -> None:
        self.counter = counter
        self.charged = 0
        self._start: list[int] = []

    def pre(self, module: nn.Module, args: tuple[object, ...]) -> None:
        self._start.append(self.counter.get_total_flops())

    def post(self, module: nn.Module, args: tuple[object, ...], output: object) -> None:
        self.charged += self.counter.get_total_flops() - self._start.pop()


def count_flops(model: nn.Module, input_size: Sequence[int]) -> int:
    """FLOPs (2 per multiply-add) of ``model`` on one zero input of ``input_size`` ((B, C, H, W) or (C, H, W)).

    Runs in eval mode without gradients on the device (and dtype) of the model's first parameter — a model
    built under ``torch.device("meta")`` is counted without allocating memory — then restores the train mode.
    Attention modules are charged their analytic ``core_flops`` plus their projections (module docstring).
    """
    size = _input_size(input_size)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    x = torch.zeros(size, device=device, dtype=dtype)

    counter = FlopCounterMode(display=False)
    attention = _outermost_attention(model)
    seen_inputs: list[list[torch.Size]] = [[] for _ in attention]
    meters: list[tuple[_Meter, _Meter]] = []
    handles = []
    for index, module in enumerate(attention):

        def record(mod: nn.Module, args: tuple[object, ...], shapes: list[torch.Size] = seen_inputs[index]) -> None:
            shapes.append(args[0].shape)  # type: ignore[union-attr]

        whole, projections = _Meter(counter), _Meter(counter)
        handles += [
            module.register_forward_pre_hook(record),
            module.register_forward_pre_hook(whole.pre),
            module.register_forward_hook(whole.post),
        ]
        for sub in module.modules():
            if isinstance(sub, _PROJECTIONS):
                handles += [sub.register_forward_pre_hook(projections.pre), sub.register_forward_hook(projections.post)]
        meters.append((whole, projections))

    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    total = counter.get_total_flops()
    for module, shapes, (whole, projections) in zip(attention, seen_inputs, meters, strict=True):
        core = sum(int(module.core_flops(tuple(shape))) for shape in shapes)  # type: ignore[operator]
        total += core - (whole.charged - projections.charged)
    return int(total)
