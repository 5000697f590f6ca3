"""Whole studies simulated on a metric of whole examples, decided by the study's own code.

A study of ``comparisons`` design points against one reference, ``max_seeds`` seeds each: every run's accuracy
is a count of correct examples out of N, ``round(μ + σ·Z)`` with per-run noise σ in examples (independent runs,
the expectation's offset on the grid drawn per study), stored as float32 k/N as the trials store it, read back as
:func:`dashboards.verdicts.decide` reads it (snapped to k/N, differences in whole examples, ties at 1/N, the
margin in examples) and decided by :func:`dashboards.sequential.sequential_decisions` — the function ``decide``
calls, vectorised over studies. Replaying the looks on the full seed vectors is what the study's rounds do
(platform/study/rounds.py): a decided comparison gets no more seeds, and a look only uses the seeds before it.

Used by the regression simulation (tests/dashboards_tests/test_decision_simulation.py), the power of a budget at
the study's N (:mod:`.power`) and benchmarks/decision_figures.py (the tables in docs/report.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sequential

BASE = 0.6  # the reference's expected accuracy (the verdicts do not depend on it: differences in examples)


@dataclass(frozen=True)
class Cell:
    """One simulated setting: split size, per-run noise (examples), comparisons, seeds budget, margin."""

    examples: int
    noise: float
    comparisons: int
    min_seeds: int
    max_seeds: int
    effect: float  # the margin, in the metric's units (a fraction of the split)
    alpha: float = 0.05


def counts(rng: np.random.Generator, cell: Cell, studies: int, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simulated correct-example counts: reference (studies, seeds) and levels (studies, comparisons, seeds);
    ``shift`` (comparisons,): each level's true difference in examples."""
    n, size = cell.examples, (studies, cell.max_seeds)
    centre = BASE * n + rng.random(studies)[:, None]  # the expectation's offset on the grid, per study
    reference = np.rint(centre + cell.noise * rng.standard_normal(size))
    levels = np.rint(centre[:, None, :] + np.asarray(shift, dtype=float)[None, :, None]
                     + cell.noise * rng.standard_normal((studies, cell.comparisons, cell.max_seeds)))
    return np.clip(reference, 0, n), np.clip(levels, 0, n)


def paired_differences(reference: np.ndarray, levels: np.ndarray, examples: int) -> np.ndarray:
    """level − reference as ``decide`` forms it: float32 k/N values snapped back to k/N, then subtracted."""
    def stored(k: np.ndarray) -> np.ndarray:
        return np.rint((k / examples).astype(np.float32).astype(float) * examples) / examples

    return stored(levels) - stored(reference)[:, None, :]


def simulate(cell: Cell, *, studies: int, seed: int, shift: np.ndarray | None = None,
             sign: int = 1) -> sequential.Decisions:
    """The decisions of ``studies`` simulated studies of ``cell`` (fixed generator ``seed``: deterministic)."""
    rng = np.random.default_rng(seed)
    shift = np.zeros(cell.comparisons) if shift is None else np.asarray(shift, dtype=float)
    reference, levels = counts(rng, cell, studies, shift)
    diffs = paired_differences(reference, levels, cell.examples)
    bounds = sequential.boundaries(cell.min_seeds, cell.max_seeds, cell.alpha, cell.comparisons)
    available = np.full((studies, cell.comparisons), cell.max_seeds)
    return sequential.sequential_decisions(diffs, available, effect=cell.effect, sign=sign, bounds=bounds,
                                           resolution=1.0 / cell.examples, counts=True)


def upper_bound(hits: int, trials: int, z: float = 1.96) -> float:
    """Wilson's upper 95 % bound of a rate ``hits / trials``."""
    p = hits / trials
    centre = p + z * z / (2 * trials)
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return float((centre + spread) / (1 + z * z / trials))
