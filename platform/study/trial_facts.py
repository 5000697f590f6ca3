"""What a trial records about itself besides its metrics: the examples its metrics count over (the N of an
accuracy's k/N), the worker that ran it, and the latency of its trained network."""

from __future__ import annotations

import math
import os
import socket
import statistics
import time
from typing import Any

import torch

from ..data.shards import shard_problems


def evaluated_examples(info: dict[str, Any], batch_size: int, limit_val: int | float | None,
                       world_size: int = 1) -> dict[str, int]:
    """Examples each split's metrics count over (an accuracy is k of these): the split's size, or for validation
    with ``train.limit_val_batches`` the examples of the batches Lightning evaluates (an int: that many batches; a
    fraction: ``int(batches × fraction)``, as Lightning rounds) — per rank under DDP, each rank holding every
    ``world_size``-th example (:mod:`..data.shards`: no example twice), summed over the ranks. Raises
    ``ValueError`` when some rank would evaluate nothing (:func:`~..data.shards.shard_problems`)."""
    examples = {split: int(info[f"num_{split}"]) for split in ("train", "val", "test") if f"num_{split}" in info}
    if problems := shard_problems(examples, world_size=world_size, batch_size=batch_size, limit_val=limit_val):
        raise ValueError("; ".join(problems))
    if limit_val is not None and "val" in examples:
        total = 0
        for rank in range(world_size):
            shard = len(range(rank, examples["val"], world_size))
            batches = math.ceil(shard / batch_size)
            used = int(batches * limit_val) if isinstance(limit_val, float) else min(batches, int(limit_val))
            total += min(shard, used * batch_size)
        examples["val"] = total
    return examples


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def measure_latency(net: torch.nn.Module, example: torch.Tensor, *, repeats: int = 10) -> float:
    """Median milliseconds of one forward pass on a single image (batch 1), after a warm-up pass."""
    net = net.eval()
    times = []
    with torch.no_grad():
        net(example)
        for _ in range(repeats):
            start = time.perf_counter()
            net(example)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
