"""Evaluation shards under DDP that count every example exactly once.

Lightning gives each rank a ``DistributedSampler``, which pads the split to a multiple of the world size by
repeating examples: 270 validation images over 4 ranks become 272, and an accuracy reduced over the ranks is k/272
with two images counted twice (measured: val/acc 36/272 while the trial recorded 270 examples). For validation
and test the loaders use :class:`EvenShards` instead: rank r takes examples r, r + W, r + 2W, … — no padding, so
the ranks' shards differ by at most one example and together hold each example once. The metrics are sums
(torchmetrics' accuracy counts, :class:`~..training.classifier.ExampleMean`'s totals) reduced across ranks, so the
value is k/N over the split's N. Lightning keeps a loader's sampler when it already is a ``DistributedSampler``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch.distributed as dist
from torch.utils.data import DistributedSampler


class EvenShards(DistributedSampler):
    """Rank ``rank`` of ``num_replicas`` takes indices rank, rank + W, …: unpadded, in order, each index once."""

    def __init__(self, dataset: Sized, *, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))
        self.total_size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


def evaluation_sampler(dataset: Sized) -> EvenShards | None:
    """The sampler of a validation/test loader: :class:`EvenShards` inside a DDP process group of more than one
    rank, else None (the loader's own sequential order)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return EvenShards(dataset, num_replicas=dist.get_world_size(), rank=dist.get_rank())
