"""End-of-study table: design point → objective mean ± std over seeds, n, params, FLOPs, best highlighted; with
``search.effect`` also each comparison's verdict, Δ with its paired 95 % CI, and the seeds needed.

The numbers are computed by :func:`get_summary_info` and :func:`get_verdicts` (pure, testable) and rendered by
:func:`render_summary`.
"""

from __future__ import annotations

import optuna
from rich.console import Console
from rich.table import Table

from ..labels import legend, short_labels
from ..reports.load import point_data, point_info, study_info
from ..reports.views import columns, data, decisions, rows, verdicts

best_key = data.best_key  # the report's rule, one function (the parent run's note reads it here too)
PointSummary = rows.PointSummary  # a design point's end-of-study row (the dashboards' type, read by the columns)


def get_summary_info(study: optuna.Study) -> list[PointSummary]:
    """One row per design point (in order of first appearance), over all its trials."""
    return [PointSummary.of(p) for p in point_data(study.get_trials(deepcopy=False))]


def get_verdicts(study: optuna.Study, spec_dict: dict) -> dict[str, verdicts.Verdict]:
    """The verdict of every comparison with its reference (the report's), {} without ``search.effect``."""
    info = study_info(study, spec_dict)
    return decisions.study_verdicts(point_info(study, info), info)


def no_verdicts_reason(spec_dict: dict) -> str | None:
    """Why the study gets no verdicts although it sets ``search.effect`` (one seed), else None."""
    return decisions.no_verdicts_reason(spec_dict.get("search", {}))


lost_seed_notes = decisions.lost_seed_notes  # comparisons that lost seeds for good: which, why, where they ended


def _table(title: str | None, shown: list[columns.Column], metric: str, rows: list[list[str]],
           styles: list[str | None]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(shown):
        # The label and the verdict never wrap or shrink: they are what a reader looks for.
        whole = column.whole
        table.add_column(column.title(metric), justify="left" if whole else "right", no_wrap=whole,
                         min_width=max((len(r[i]) for r in rows), default=0) if whole else None)
    for cells, style in zip(rows, styles, strict=True):
        table.add_row(*cells, style=style)
    return table


def _fits(table: Table, width: int) -> bool:
    """Does ``table`` render at ``width`` columns without squeezing any cell?"""
    return Console(width=10_000).measure(table).maximum <= width


def render_summary(rows: list[PointSummary], *, metric: str, direction: str, console: Console,
                   found: dict[str, verdicts.Verdict] | None = None) -> None:
    """The table; ``found`` (from :func:`get_verdicts`) adds the verdict, Δ [95 % CI] and seeds needed columns.

    Design points appear by their short labels (``k=7``; :mod:`..labels`). Wide terminals get one table; narrower
    ones the results and the verdicts as two tables; narrower still, one block of ``name: value`` lines per design
    point. No label, verdict or interval is ever cut.
    """
    best = best_key(rows, direction)
    labels = short_labels(r.key for r in rows)
    title = f"{metric} ({direction}) by design point — mean ± std over seeds"
    shown = columns.shown(columns.TERMINAL, with_verdicts=bool(found))
    n_stats = sum(not c.verdicts for c in shown)
    context = columns.Context(columns.TERMINAL, metric, best, labels, columns.SUMMARY_DECIMALS)
    cells = columns.cells(columns.summary_rows(rows, found or {}), context, shown)
    styles: list[str | None] = ["bold green" if row.key == best else None for row in rows]
    width = console.width
    wide = _table(title, shown, metric, cells, styles)
    stats = _table(title, shown[:n_stats], metric, [c[:n_stats] for c in cells], styles)
    versus = _table("verdict against the reference", [shown[0], *shown[n_stats:]], metric,
                    [[c[0], *c[n_stats:]] for c in cells], styles)
    if _fits(wide, width):
        console.print(wide)
    elif _fits(stats, width) and (not found or _fits(versus, width)):
        console.print(stats)
        if found:
            console.print(versus)
    else:  # one block per design point
        console.print(title, highlight=False)
        names = [c.title(metric) for c in shown[1:]]
        for row_cells, style in zip(cells, styles, strict=True):
            console.print(row_cells[0], style=style or "bold", soft_wrap=True, highlight=False)
            for name, cell in zip(names, row_cells[1:], strict=True):
                console.print(f"  {name}: {cell}", soft_wrap=True, highlight=False)
    if (abbreviations := legend(r.key for r in rows)):
        console.print(f"design points: {abbreviations}", highlight=False)
    if best is not None:
        console.print(f"best: [bold green]{labels[best]}[/] ({best})", highlight=False)
