"""The resolution of a metric's values: ties are decided where the values can really differ, not in rounding noise.

An accuracy over a split of N examples is a fraction k/N: two runs differ by at least one example, 1/N, or not
at all. Its values reach the report as float32 numbers (torchmetrics computes in float32; Optuna and MLflow store
that float), so 48/270 − 0/270 and 118/270 − 70/270 — the same 48 examples — differ in the eighth digit. A paired
t statistic formed from that difference's "spread" (1.5e-8) is 2.4e7: a verdict from rounding noise. So before
any test:

- **Snap to the quantum.** For a fraction-of-examples metric (``*acc*``: accuracy, top-5 accuracy) of a split
  whose size N the trials recorded, every value is replaced by the exact k/N it stands for — when every value of
  the comparison is within ``SNAP_TOLERANCE`` examples of some k/N. Otherwise (an average over ranks with a
  padded sampler, a metric of a subset, a loss) the values stay as they are and only the float32 resolution
  applies.
- **The resolution of a paired difference** is then 1/N (differences are whole numbers of examples), or, for other
  metrics, ``FLOAT32_RESOLUTION`` relative to the largest value (8 float32 ulps: two float32 numbers that are
  equal up to their storage differ by less).

:mod:`dashboards.sequential` uses it twice: differences whose spread is below half a resolution step are
*identical* (exact sign test, or "identical on every seed" when they are all zero), and the paired variance is
never taken below the quantisation's own, ``step² / 6`` (two values each known to ±step/2, uniformly: Sheppard),
so a spread of one example at two seeds is not read as a precise measurement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

FLOAT32_RESOLUTION = 2.0**-20  # relative; float32 has 2^-23 between 1 and the next number
SNAP_TOLERANCE = 1e-3  # in examples: how far a value may be from k/N and still be read as k/N
SPLITS = ("train", "val", "test")


def split_of(metric: str) -> str | None:
    """The split a logged metric is computed on (``val/acc`` → ``val``), None when its name does not say."""
    prefix = metric.split("/", 1)[0]
    return prefix if "/" in metric and prefix in SPLITS else None


def is_fraction(metric: str) -> bool:
    """Accuracies (``*acc*``, top-k included) are fractions of the split's examples; losses are not."""
    return "acc" in metric.rsplit("/", 1)[-1].lower()


def examples_behind(metric: str, examples: Mapping[str, int] | None) -> int | None:
    """N, the number of examples a fraction metric counts over, from the trials' ``{split: examples}``."""
    split = split_of(metric)
    if not examples or split is None or not is_fraction(metric):
        return None
    n = examples.get(split)
    return int(n) if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


@dataclass(frozen=True)
class Resolution:
    """How finely a comparison's values can differ: ``examples`` (N, when every value is a k/N) and ``step``,
    the resolution of a paired difference in the metric's units."""

    examples: int | None
    step: float

    def label(self) -> str:
        return f"1/{self.examples}" if self.examples else f"float32 (±{self.step:.1e})"


def _on_grid(value: float, n: int) -> bool:
    scaled = value * n
    return abs(scaled - round(scaled)) <= SNAP_TOLERANCE


def snap(values_by_point: Mapping[str, Mapping[int, float]], examples: int | None
         ) -> tuple[dict[str, dict[int, float]], Resolution]:
    """The values read at their resolution: each replaced by its exact k/N when they all are fractions of N."""
    flat = [float(v) for seeds in values_by_point.values() for v in seeds.values()]
    if examples and flat and all(math.isfinite(v) and _on_grid(v, examples) for v in flat):
        snapped = {p: {s: round(float(v) * examples) / examples for s, v in seeds.items()}
                   for p, seeds in values_by_point.items()}
        return snapped, Resolution(examples, 1.0 / examples)
    magnitude = max((abs(v) for v in flat if math.isfinite(v)), default=0.0)
    step = FLOAT32_RESOLUTION * max(magnitude, 2.0**-126)
    return {p: dict(seeds) for p, seeds in values_by_point.items()}, Resolution(None, step)
