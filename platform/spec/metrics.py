"""The metrics a study's objective may name: what the classifier logs (``platform/training/classifier.py``),
``<split>/<stat>`` for every split and statistic.

Their persisted names are ``records.LOGGED_METRICS``. The spec sits in the bottom layer beside ``records`` and
imports nothing of the platform, so it spells the vocabulary here, once; ``tests/platform_tests/spec/test_spec.py``
fails if the two ever differ (and the records check allows this one module for it).
"""

from __future__ import annotations

SPLITS = ("train", "val", "test")
STATS = ("loss", "acc", "acc_top5")
LOSS = "loss"


def metric(split: str, stat: str) -> str:
    """``<split>/<stat>``, e.g. ``val/acc``."""
    return f"{split}/{stat}"


LOGGED_METRICS: tuple[str, ...] = tuple(metric(split, stat) for split in SPLITS for stat in STATS)
VALIDATION_METRICS: tuple[str, ...] = tuple(sorted(metric("val", stat) for stat in STATS))
DEFAULT_METRIC = metric("val", "acc")
