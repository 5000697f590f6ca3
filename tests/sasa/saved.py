"""What autograd saves for backward, for the memory tests of the SASA layers and kernels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.autograd.graph import saved_tensors_hooks


@contextmanager
def saved_sizes() -> Iterator[list[int]]:
    """The element count of every tensor autograd saves for backward inside the block, in order (the tensors
    themselves are kept as they are, so a backward after the block still works)."""
    sizes: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.numel())
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        yield sizes
