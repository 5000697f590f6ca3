"""Whole sampled studies with their confirmation round, simulated on a metric of whole examples.

One simulated study: ``configs`` configurations, each run once by the search phase (one seed, as
``studies/search.yaml``); the top ``finalists`` by that one value (the reference excluded, ties at random) and the
reference are re-run on ``max_seeds`` fresh seeds; the best and the runner-up are the two highest confirmed means
(ties: finalists before the reference, in search order — :func:`dashboards.finalists.finalist_order`). Every run's
accuracy is ``round(μ + σ·Z)`` correct examples out of N, stored as float32 k/N and read back as the report reads
it (:func:`dashboards.simulate.paired_differences`). The verdicts are those of the finalists table
(:func:`dashboards.finalists.finalist_table`): each finalist vs the reference, and best vs runner-up, by
:func:`dashboards.sequential.sequential_decisions` — the function ``verdicts.decide`` calls — with the family of
:func:`dashboards.finalists.family_size`, in two calls as the table makes them. Replaying the looks on the full
seed vectors is the report's verdict on a round that ran every seed.

Used by tests/dashboards_tests/test_search_simulation.py (issue 24: false winners under no true difference, a
planted best found).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sequential
from .finalists import family_size
from .simulate import BASE, paired_differences


@dataclass(frozen=True)
class SearchCell:
    """One simulated setting of a sampled study and its confirmation round."""

    examples: int  # N of the validation split
    noise: float  # per-run sd, in examples
    configs: int  # configurations the search phase ran (one seed each)
    finalists: int
    min_seeds: int
    max_seeds: int
    effect: float  # the margin, a fraction of the split
    alpha: float = 0.05


@dataclass(frozen=True)
class SearchOutcome:
    """Per study: the winner's configuration (``configs`` = the reference) and the verdicts' codes."""

    winner: np.ndarray  # (studies,) configuration index of the best confirmed point
    winner_is_reference: np.ndarray  # (studies,) bool
    vs_reference: np.ndarray  # (studies, finalists) sequential codes, finalists in search order
    best_vs_runner_up: np.ndarray  # (studies,) sequential code
    best_vs_reference: np.ndarray  # (studies,) code of the winner's comparison with the reference (UNDECIDED
    #                                 when the winner is the reference)


def simulate_searches(cell: SearchCell, *, studies: int, seed: int, planted: float = 0.0) -> SearchOutcome:
    """``studies`` simulated studies (fixed generator ``seed``); configuration 0 is ``planted`` examples ahead of
    the others and of the reference (0: no true difference anywhere)."""
    rng = np.random.default_rng(seed)
    n, k = cell.examples, cell.finalists
    centre = BASE * n + rng.random(studies)[:, None]
    true = np.zeros((studies, cell.configs))
    true[:, 0] = planted
    searched = np.rint(centre + true + cell.noise * rng.standard_normal((studies, cell.configs)))
    jitter = rng.random((studies, cell.configs)) * 0.5  # below one example: breaks ties only, at random
    chosen = np.argsort(-(searched + jitter), axis=1, kind="stable")[:, :k]  # (studies, k)
    shifts = np.concatenate([np.take_along_axis(true, chosen, axis=1), np.zeros((studies, 1))], axis=1)
    runs = np.clip(np.rint(centre[:, :, None] + shifts[:, :, None]
                           + cell.noise * rng.standard_normal((studies, k + 1, cell.max_seeds))), 0, n)
    family = family_size(k, reference=True)
    bounds = sequential.boundaries(cell.min_seeds, cell.max_seeds, cell.alpha, family)
    common = {"effect": cell.effect, "sign": 1, "bounds": bounds, "family": family, "resolution": 1.0 / n,
              "counts": True}
    vs_ref = sequential.sequential_decisions(paired_differences(runs[:, k], runs[:, :k], n),
                                             np.full((studies, k), cell.max_seeds), **common).verdict
    order = np.argsort(-runs.mean(axis=2), axis=1, kind="stable")
    best, runner = order[:, 0], order[:, 1]
    rows = np.arange(studies)
    head = paired_differences(runs[rows, runner], runs[rows, best][:, None, :], n)
    head_code = sequential.sequential_decisions(head, np.full((studies, 1), cell.max_seeds), **common).verdict[:, 0]
    configs = np.concatenate([chosen, np.full((studies, 1), cell.configs)], axis=1)
    is_ref = best == k
    best_vs_ref = np.where(is_ref, sequential.UNDECIDED, vs_ref[rows, np.minimum(best, k - 1)])
    return SearchOutcome(configs[rows, best], is_ref, vs_ref, head_code, best_vs_ref)


def winner_called_better(outcome: SearchOutcome) -> np.ndarray:
    """Per study: the confirmed best called better than the reference or than the runner-up."""
    return (outcome.best_vs_reference == sequential.BETTER) | (outcome.best_vs_runner_up == sequential.BETTER)
