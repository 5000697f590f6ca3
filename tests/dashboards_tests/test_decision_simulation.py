"""The regression simulation of issue 26: whole studies on a metric of whole examples, decided by the study's code.

The grid of the independent audit: N ∈ {50, 270, 10000} examples, per-run noise 0.3–10 examples, 1 and 4
comparisons, budgets {2, 6} and {3, 10}, effect 0.02 (one example at N = 50): 96 cells. Each cell runs 2,000
studies (fixed generators: the same numbers on every machine); a cell whose rate is above α + 0.005 is run again
with 20,000 fresh studies, and that estimate is the one checked. Checked in every cell:

- no verdict better/worse in a study of null comparisons (the family-wise false-positive rate) ≤ α + 0.01;
- "equivalent" for a comparison whose true difference equals the effect ≤ α + 0.01.

The Wilson upper 95 % bound of each cell is in the failure message and in the test's ``record_property``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dashboards import sequential, simulate

ALPHA, EFFECT, SLACK = 0.05, 0.02, 0.01
SPLITS = (50, 270, 10_000)
NOISE = (0.3, 0.6, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0)
COMPARISONS = (1, 4)
BUDGETS = ((2, 6), (3, 10))
STUDIES, CLOSE_STUDIES = 2000, 20_000


def _cells() -> list[simulate.Cell]:
    return [simulate.Cell(n, noise, m, low, high, EFFECT, ALPHA)
            for (low, high), n, noise, m in itertools.product(BUDGETS, SPLITS, NOISE, COMPARISONS)]


def _rate(cell: simulate.Cell, *, equivalence: bool, seed: int) -> tuple[float, float, int]:
    """The cell's rate, its upper bound and the studies behind it (rerun at 20,000 when close to the limit)."""
    shift = np.zeros(cell.comparisons)
    if equivalence:
        shift[0] = cell.effect * cell.examples  # a true difference equal to the effect, in examples
    for studies, offset in ((STUDIES, 0), (CLOSE_STUDIES, 1)):
        found = simulate.simulate(cell, studies=studies, seed=seed + offset, shift=shift)
        if equivalence:
            hits = int((found.verdict[:, 0] == sequential.EQUIVALENT).sum())
        else:
            hits = int(np.isin(found.verdict, (sequential.BETTER, sequential.WORSE)).any(axis=1).sum())
        rate = hits / studies
        if rate <= cell.alpha + SLACK / 2:
            break
    return rate, simulate.upper_bound(hits, studies), studies


@pytest.mark.parametrize("equivalence", [False, True], ids=["null-false-positives", "equivalent-at-the-margin"])
def test_every_cell_keeps_its_error_rate(equivalence: bool, record_property: pytest.RecordProperty) -> None:
    rows = []
    for i, cell in enumerate(_cells()):
        rate, upper, studies = _rate(cell, equivalence=equivalence, seed=1000 * i + (7 if equivalence else 3))
        rows.append((cell, rate, upper, studies))
    worst = max(rows, key=lambda r: r[1])
    record_property("worst_cell", f"{worst[0]}: {worst[1]:.4f} (upper {worst[2]:.4f}, {worst[3]} studies)")
    table = "\n".join(f"N={c.examples} σ={c.noise} m={c.comparisons} {{{c.min_seeds},{c.max_seeds}}}: "
                      f"{rate:.4f} [≤ {upper:.4f}] ({studies} studies)" for c, rate, upper, studies in rows)
    assert len(rows) == 96
    assert all(rate <= ALPHA + SLACK for _, rate, _, _ in rows), table
