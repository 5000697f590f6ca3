"""The ablation table's columns, one list (:data:`COLUMNS`) for every form the table takes.

A :class:`Column` says what it is called, how its cell reads (``text``), its full-precision value (``value``) and
which outputs show it. The outputs: the report's ``table.md`` and ``report.html`` (text), ``table.csv`` (values,
named by ``key``), the ``report/<point>/<key>`` metrics of the parent run (numeric values); the end-of-study forms
— the terminal summary and the parent run's markdown description / Optuna note (text), ``ablation_table.json``
(values) and the parent run's ``table/<point>/<key>`` metrics (numeric values). A new column is one entry here.

Every output reads the same row type, :class:`.rows.TableRow`: the report's rows come from :func:`.report.build_table`,
the end-of-study rows from :func:`summary_rows` (a design point's trials plus its verdict, no paired test).
Several of today's outputs name or format the same quantity differently, so some quantities are more than one
entry, each shown where its form is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import legend, stats, verdicts
from .data import PointData
from .rows import PRUNED, Context, PointSummary, TableRow, decision_numbers

# --- outputs ---------------------------------------------------------------------------------------------------
MARKDOWN = "table.md"
HTML = "report.html"
CSV = "table.csv"
REPORT_METRICS = "report metrics"  # the report's numbers on the parent run: report/<point>/<key>
TERMINAL = "terminal"  # the end-of-study summary
NOTE = "note"  # the parent run's description and the Optuna study's note (markdown)
TABLE = "mlflow table"  # the parent run's MLflow table (ablation_table.json)
TABLE_METRICS = "table metrics"  # the end-of-study table's numbers on the parent run: table/<point>/<key>
REPORT = frozenset({MARKDOWN, HTML})
SUMMARY = frozenset({TERMINAL, NOTE})
EVERY = frozenset({MARKDOWN, HTML, CSV, REPORT_METRICS, TERMINAL, NOTE, TABLE, TABLE_METRICS})


@dataclass(frozen=True)
class Column:
    """One column: ``header`` and ``key`` may hold ``{metric}`` (the objective's name); ``text`` is the cell in the
    text outputs, ``value`` the full-precision value in the others; ``outputs`` lists where it shows; ``verdicts``
    columns show at the end of the table and only with verdicts (the end-of-study forms); ``whole`` cells never
    wrap or shrink in the terminal; ``front`` columns (the answer: design point, value, verdict, Δ, seeds needed)
    come first, in list order, in the report's text tables, so the verdict is on screen without scrolling."""

    key: str
    header: str
    text: Callable[[TableRow, Context], str] | None = None
    value: Callable[[TableRow, Context], Any] | None = None
    outputs: frozenset[str] = EVERY
    verdicts: bool = False
    whole: bool = False
    front: bool = False

    def title(self, metric: str) -> str:
        return self.header.replace("{metric}", metric)

    def name(self, metric: str) -> str:
        return self.key.replace("{metric}", metric)


def shown(output: str, *, with_verdicts: bool = True) -> list[Column]:
    """The columns of ``output`` in table order (columns of verdicts last, and only ``with_verdicts``)."""
    own = [c for c in COLUMNS if output in c.outputs]
    if output in REPORT:
        own = [c for c in own if c.front] + [c for c in own if not c.front]
    return [c for c in own if not c.verdicts] + ([c for c in own if c.verdicts] if with_verdicts else [])


def cells(rows: Sequence[TableRow], context: Context, columns: Sequence[Column]) -> list[list[str]]:
    """The text of ``columns`` for each row."""
    return [[c.text(row, context) if c.text else _plain(c.value(row, context) if c.value else None)
             for c in columns] for row in rows]


def valued(output: str) -> list[Column]:
    """The columns of ``output`` that have a value (table.csv, ablation_table.json, the metrics)."""
    return [c for c in shown(output) if c.value is not None]


def values(row: TableRow, context: Context) -> dict[str, Any]:
    """A row's full-precision values by column name; for the metric outputs only the numbers."""
    output = context.output
    names = [c.name(context.metric) for c in valued(output)]
    if len(set(names)) != len(names):  # a second column of one name would drop a cell and shift table.csv
        raise ValueError(f"columns of {output!r} share a name: {sorted({n for n in names if names.count(n) > 1})}")
    out = {c.name(context.metric): c.value(row, context) for c in valued(output) if c.value is not None}
    if output in (REPORT_METRICS, TABLE_METRICS):
        return {k: float(v) for k, v in out.items() if _is_number(v)}
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _plain(value: Any) -> str:
    return "—" if value is None else str(value)


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


# --- the end-of-study rows -------------------------------------------------------------------------------------


def summary_rows(rows: Sequence[PointSummary], found: Mapping[str, verdicts.Verdict]) -> list[TableRow]:
    """The end-of-study rows: each design point with its verdict from ``found`` (none without ``search.effect``)."""
    references = {v.reference for v in found.values()}
    out = []
    for row in rows:
        decision = found.get(row.key)
        point = PointData(key=row.key, level={}, raw_level={}, values=dict(enumerate(row.values)),  # by trial
                          n_complete=row.n_complete, n_pruned=row.n_pruned, n_failed=row.n_failed,
                          params=row.params, flops=row.flops, trial_values=tuple(row.values))
        verdict = (PRUNED if row.n_pruned else decision.verdict if decision else
                   stats.REFERENCE if row.key in references else "")
        reference = decision.reference if decision else row.key if row.key in references else None
        summary = stats.Summary(len(row.values), row.mean, row.std, None, None)
        out.append(TableRow(point, summary, reference, None, None, verdict, decision,
                            decision.ci_low if decision else None, decision.ci_high if decision else None))
    return out


# --- the cells -------------------------------------------------------------------------------------------------


def _point_text(row: TableRow, ctx: Context) -> str:
    key = row.point.key
    if ctx.output == TERMINAL:
        return ctx.labels.get(key, key)
    return f"**{key}**" if ctx.output == NOTE and key == ctx.best else key


def _mean_std(row: TableRow, ctx: Context) -> str:
    s = row.summary
    return _num(s.mean, ".4f") + ("" if s.std is None or s.mean is None else f" ± {s.std:.4f}")


def _counts(row: TableRow, ctx: Context) -> str:
    p = row.point
    return f"{p.n_complete}/{p.n_pruned}/{p.n_failed}"


def _scaled(key: str, scale: float) -> Callable[[TableRow, Context], str]:
    def text(row: TableRow, ctx: Context) -> str:
        value = getattr(row.point, key)
        return _num(None if value is None else value / scale, f".{ctx.decimals[key]}f")
    return text


def _ci(row: TableRow, ctx: Context) -> str:
    s = row.summary
    return "—" if s.ci_low is None else f"[{s.ci_low:.4f}, {s.ci_high:.4f}]"


def _interval(row: TableRow) -> str:
    return "" if row.ci_low is None or row.ci_high is None else f" [{row.ci_low:+.4f}, {row.ci_high:+.4f}]"


def _delta(row: TableRow, ctx: Context) -> str:
    pr = row.paired
    delta = row.decision.delta if row.decision is not None else pr.mean_diff if pr is not None else None
    return ("—" if delta is None else f"{delta:+.4f}") + _interval(row)


def _test(row: TableRow, ctx: Context) -> str:
    test = decision_numbers(row)[0]
    if row.decision is None:
        test = row.paired.test if row.paired is not None and row.p_holm is not None else None
    return test or "—"


def _p(row: TableRow, ctx: Context) -> str:
    _, p_value, bound, _ = decision_numbers(row)
    if row.decision is None:
        return "—" if row.p_holm is None else f"{row.p_holm:.3g} (Holm)"
    return "—" if p_value is None else f"{p_value:.3g}" + ("" if bound is None else f" vs {bound:.3g}")


def _verdict(row: TableRow, ctx: Context) -> str:
    at = row.point.pruned_at
    return row.verdict if row.verdict != PRUNED or at is None else f"pruned at epoch {at}"


def _seeds(row: TableRow, ctx: Context) -> str:
    if row.decision is not None and legend.is_decided(row.decision.verdict):
        return ""  # decided: no seeds are needed any more
    return str(decision_numbers(row)[3] or "—")


def _paired(name: str) -> Callable[[TableRow, Context], Any]:
    return lambda r, c: getattr(r.paired, name) if r.paired else None


def _decided(index: int) -> Callable[[TableRow, Context], Any]:
    return lambda r, c: decision_numbers(r)[index]


def _end_verdict(row: TableRow, ctx: Context) -> str:
    """The end-of-study verdict: pruned, the sequential verdict (with its test) or reference."""
    d = row.decision
    if ctx.output == TERMINAL and not row.point.n_pruned and d is not None:
        return d.verdict + (f" ({d.test})" if d.test else "")
    return (row.verdict or "—") + (f" ({d.test})" if ctx.output == NOTE and d is not None and d.test else "")


def _end_delta(row: TableRow, ctx: Context) -> str:
    d = row.decision
    if d is None or (ctx.output == TERMINAL and row.point.n_pruned):
        return "—"
    return _num(d.delta, "+.4f") + _interval(row)


def _end_seeds(row: TableRow, ctx: Context) -> str:
    d = row.decision
    if d is not None and legend.is_decided(d.verdict):
        return ""  # decided: no seeds are needed any more
    if ctx.output == NOTE:
        return _num(d.seeds_needed if d else None, "d")
    return "—" if d is None or row.point.n_pruned else verdicts.seeds_label(d.seeds_needed)


def _decision(name: str) -> Callable[[TableRow, Context], Any]:
    return lambda r, c: getattr(r.decision, name) if r.decision else None


_END = frozenset({TABLE})
_CSV_M = frozenset({CSV, REPORT_METRICS})
_TABLES = REPORT | SUMMARY | {CSV, TABLE}  # every table but the metrics

COLUMNS: list[Column] = [
    Column("design_point", "design point", _point_text, lambda r, c: r.point.key, REPORT | SUMMARY | {CSV}, whole=True,
           front=True),
    Column("design point", "", None, lambda r, c: r.point.key, _END),
    Column("label", "", None, lambda r, c: c.labels.get(r.point.key, r.point.key), _END),
    Column("n_seeds", "", None, lambda r, c: r.summary.n, frozenset({CSV})),
    Column("value", "{metric} (mean ± std)", _mean_std, None, REPORT, front=True),
    Column("value", "{metric}", _mean_std, None, frozenset({TERMINAL})),
    Column("value", "{metric} mean ± std", _mean_std, None, frozenset({NOTE})),
    Column("mean", "", None, lambda r, c: r.summary.mean, _CSV_M | {TABLE_METRICS}),
    Column("{metric} mean", "", None, lambda r, c: r.summary.mean, _END),
    Column("std", "", None, lambda r, c: r.summary.std, _CSV_M | {TABLE_METRICS}),
    Column("{metric} std", "", None, lambda r, c: r.summary.std, _END),
    Column("ci_low", "", None, lambda r, c: r.summary.ci_low, _CSV_M),
    Column("ci_high", "", None, lambda r, c: r.summary.ci_high, _CSV_M),
    Column("ci", "95 % CI", _ci, None, REPORT),
    Column("n", "n (ok/pruned/failed)", _counts, None, REPORT),
    Column("n", "n ok/pruned/failed", _counts, lambda r, c: r.point.n_complete, SUMMARY | {TABLE_METRICS}),
    Column("n_complete", "", None, lambda r, c: r.point.n_complete, frozenset({CSV})),
    Column("n complete", "", None, lambda r, c: r.point.n_complete, _END),
    Column("n_pruned", "", None, lambda r, c: r.point.n_pruned, frozenset({CSV})),
    Column("n pruned", "", None, lambda r, c: r.point.n_pruned, _END),
    Column("n_failed", "", None, lambda r, c: r.point.n_failed, frozenset({CSV})),
    Column("n failed", "", None, lambda r, c: r.point.n_failed, _END),
    Column("params", "params (M)", _scaled("params", 1e6), lambda r, c: r.point.params, _TABLES),
    Column("flops", "FLOPs (G)", _scaled("flops", 1e9), lambda r, c: r.point.flops, _TABLES),
    Column("throughput", "img/s", lambda r, c: _num(r.point.throughput, ".0f"), lambda r, c: r.point.throughput,
           REPORT | {CSV}),
    Column("test_acc", "test acc", lambda r, c: _num(r.point.test_acc, ".4f"), lambda r, c: r.point.test_acc,
           REPORT | _CSV_M),
    Column("reference", "", None, lambda r, c: r.reference, frozenset({CSV})),
    Column("n_pairs", "", None, _paired("n_pairs"), frozenset({CSV})),
    Column("diff", "", None, _paired("mean_diff"), _CSV_M),
    Column("test", "", None, _paired("test"), frozenset({CSV})),
    Column("statistic", "", None, _paired("statistic"), frozenset({CSV})),
    Column("p", "", None, _paired("p_value"), frozenset({CSV})),
    Column("test", "test", _test, None, REPORT),
    Column("p", "p", _p, None, REPORT),
    Column("p_holm", "", None, lambda r, c: r.p_holm, _CSV_M),
    Column("verdict", "verdict", _verdict, lambda r, c: r.verdict, REPORT | {CSV}, front=True, whole=True),
    Column("delta", "Δ vs ref [95 % CI]", _delta, None, REPORT, front=True),
    Column("diff_ci_low", "", None, lambda r, c: r.ci_low, frozenset({CSV})),
    Column("diff_ci_high", "", None, lambda r, c: r.ci_high, frozenset({CSV})),
    Column("decided_by", "", None, _decided(0), frozenset({CSV})),
    Column("p_decision", "", None, _decided(1), frozenset({CSV})),
    Column("p_threshold", "", None, _decided(2), frozenset({CSV})),
    Column("seeds_needed", "seeds needed", _seeds, _decided(3), REPORT | {CSV}, front=True),
    Column("pruned_at_epoch", "", None, lambda r, c: r.point.pruned_at, frozenset({CSV})),
    # The end-of-study verdict columns (shown when the study has verdicts: search.effect).
    Column("verdict", "verdict", _end_verdict, lambda r, c: r.verdict or None, SUMMARY | _END, verdicts=True,
           whole=True),
    Column("test", "", None, _decision("test"), _END, verdicts=True),
    Column("delta", "Δ vs ref [95 % CI]", _end_delta, _decision("delta"), SUMMARY | _END, verdicts=True),
    Column("ci low", "", None, _decision("ci_low"), _END, verdicts=True),
    Column("ci high", "", None, _decision("ci_high"), _END, verdicts=True),
    Column("seeds needed", "seeds needed", _end_seeds, _decision("seeds_needed"), SUMMARY | _END, verdicts=True),
]

VERDICT = next(c for c in COLUMNS if c.key == "verdict" and HTML in c.outputs)  # coloured by verdict in the HTML
POINT = COLUMNS[0]  # the design point: first in every output (table.csv puts the parameters' levels after it)


def report_decimals(rows: Sequence[TableRow]) -> dict[str, int]:
    """Decimals that give params (M) and FLOPs (G) 3 significant digits on their smallest non-zero value."""
    millions = [None if r.point.params is None else r.point.params / 1e6 for r in rows]
    billions = [None if r.point.flops is None else r.point.flops / 1e9 for r in rows]
    return {"params": _decimals(millions), "flops": _decimals(billions)}


SUMMARY_DECIMALS: Mapping[str, int] = {"params": 3, "flops": 4}


def _decimals(values: Collection[float | None]) -> int:
    """Decimals that give the column's smallest non-zero value 3 significant digits (one format per column)."""
    nonzero = [abs(v) for v in values if v]
    return max(1, 2 - math.floor(math.log10(min(nonzero)))) if nonzero else 1
