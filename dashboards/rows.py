"""A row of the ablation table (:class:`TableRow`) and what a cell needs besides it (:class:`Context`): the type
every column of :mod:`.columns` reads, in every output; :class:`PointSummary`, a design point as the end-of-study
summary has it (the rows :func:`.columns.summary_rows` turns into table rows).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import stats, verdicts
from .data import PointData

PRUNED = "pruned"


@dataclass(frozen=True)
class TableRow:
    """One design point of the table: its data, its summary over seeds and its comparison with the reference."""

    point: PointData
    summary: stats.Summary
    reference: str | None  # the design point this row is compared with (itself for a reference row)
    paired: stats.PairedResult | None
    p_holm: float | None
    verdict: str
    decision: verdicts.Verdict | None = None  # with search.effect: the sequential verdict and its numbers
    ci_low: float | None = None  # Δ's paired 95 % CI
    ci_high: float | None = None


@dataclass(frozen=True)
class Context:
    """What a cell needs besides its row: the output, the objective's name, the best point, labels, decimals."""

    output: str
    metric: str = ""
    best: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # design point -> short label (terminal)
    decimals: Mapping[str, int] = field(default_factory=dict)  # column key -> decimals (one format per column)


def decision_numbers(row: TableRow) -> tuple[str | None, float | None, float | None, int | str | None]:
    """What decided the row's verdict: test, its p-value and threshold, and the seeds needed (None: no decision)."""
    d = row.decision
    if d is None:
        return None, None, None, None
    if d.verdict == "equivalent" or (d.verdict == "undecided" and d.p_value is None):
        p, bound = d.p_equivalence, d.eq_boundary
    else:
        p, bound = d.p_value, d.p_boundary
    return d.test, p, bound, verdicts.seeds_label(d.seeds_needed)


@dataclass(frozen=True)
class PointSummary:
    """A design point at the end of a study: its complete trials' objective values, counts, params and FLOPs."""

    key: str
    values: tuple[float, ...]
    n_complete: int
    n_pruned: int
    n_failed: int
    params: int | None
    flops: int | None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @classmethod
    def of(cls, point: PointData) -> PointSummary:
        """The end-of-study row of a design point (the loader's ``point_data``)."""
        return cls(key=point.key, values=point.trial_values, n_complete=point.n_complete, n_pruned=point.n_pruned,
                   n_failed=point.n_failed, params=point.params, flops=point.flops)
