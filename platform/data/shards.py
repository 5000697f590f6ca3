"""Evaluation shards under DDP that count every example exactly once.

Lightning gives each rank a ``DistributedSampler``, which pads the split to a multiple of the world size by
repeating examples: 270 validation images over 4 ranks become 272, and an accuracy reduced over the ranks is k/272
with two images counted twice (measured: val/acc 36/272 while the trial recorded 270 examples). For validation
and test the loaders use :class:`EvenShards` instead: rank r takes examples r, r + W, r + 2W, … — no padding, so
the ranks' shards differ by at most one example and together hold each example once. The metrics are sums
(torchmetrics' accuracy counts, :class:`~..training.classifier.ExampleMean`'s totals) reduced across ranks, so the
value is k/N over the split's N. Lightning keeps a loader's sampler when it already is a ``DistributedSampler``.

Two layouts cannot run and would hang or break one rank only, so they are refused before training
(:func:`shard_problems`, from the preflight and again per trial): a split with fewer examples than ranks (a rank
with no example skips evaluation while the others wait in the collective) and a fractional
``train.limit_val_batches`` that leaves some rank ``int(batches × fraction) = 0`` batches (Lightning raises on
that rank alone).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sized

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


def shard_problems(sizes: Mapping[str, int], *, world_size: int, batch_size: int,
                   limit_val: int | float | None) -> list[str]:
    """Why the validation/test splits ``sizes`` (examples per split) cannot be evaluated on ``world_size`` ranks
    in :class:`EvenShards`: one line per problem, naming the option to change; empty when they can."""
    if world_size < 2:
        return []
    problems = []
    for split in ("val", "test"):
        if split in sizes and sizes[split] < world_size:
            problems.append(f"execution.devices_per_trial: {world_size} ranks but the {split} split has "
                            f"{sizes[split]} example{'s' if sizes[split] != 1 else ''}, so a rank would evaluate "
                            f"none (and the others wait for it); use at most {sizes[split]} devices per trial or "
                            f"a larger {split} split")
    if isinstance(limit_val, float) and sizes.get("val", 0) >= world_size:
        batches = [math.ceil(len(range(rank, sizes["val"], world_size)) / batch_size) for rank in range(world_size)]
        if min(int(b * limit_val) for b in batches) == 0:
            span = f"{min(batches)}" if min(batches) == max(batches) else f"{min(batches)}–{max(batches)}"
            problems.append(f"train.limit_val_batches: {limit_val:g} of the {span} validation batches per rank "
                            f"({sizes['val']} examples over {world_size} ranks (execution.devices_per_trial), "
                            f"batch size {batch_size}) rounds down to 0 batches on some rank; use a larger "
                            "fraction, an integer number of batches, or null")
    return problems


def evaluation_sampler(dataset: Sized, *, split: str = "val") -> EvenShards | None:
    """The sampler of a validation/test loader: :class:`EvenShards` inside a DDP process group of more than one
    rank, else None (the loader's own sequential order). Raises ``ValueError`` (on every rank alike, before any
    collective) when the ``split`` has fewer examples than ranks."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    world = dist.get_world_size()
    problems = shard_problems({split: len(dataset)}, world_size=world, batch_size=1, limit_val=None)
    if problems:
        raise ValueError(problems[0])
    return EvenShards(dataset, num_replicas=world, rank=dist.get_rank())
