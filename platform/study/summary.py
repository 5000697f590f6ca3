"""End-of-study table: design point → objective mean ± std over seeds, n, params, FLOPs, best highlighted; with
``search.effect`` also each comparison's verdict, Δ with its paired 95 % CI, and the seeds needed.

The numbers are computed by :func:`get_summary_info` and :func:`get_verdicts` (pure, testable) and rendered by
:func:`render_summary`.
"""

from __future__ import annotations

import optuna
from rich.console import Console
from rich.markup import escape

from ..labels import legend as label_legend
from ..labels import short_labels
from ..reports.load import point_data, point_info, study_info
from ..reports.views import cheaper, columns, data, decisions, legend, rows, terminal, verdicts

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


def get_cheaper(study: optuna.Study, spec_dict: dict) -> str | None:
    """The sentence on the cheaper design points the best by mean is not decided better than (the report's,
    :func:`dashboards.cheaper.cheaper_line`, by short labels), None when there is nothing to say."""
    info = study_info(study, spec_dict)
    points = point_info(study, info)
    found = cheaper.check(points, info)
    return cheaper.cheaper_line(found, labels=short_labels(p.key for p in points))


lost_seed_notes = decisions.lost_seed_notes  # comparisons that lost seeds for good: which, why, where they ended


def render_summary(rows: list[PointSummary], *, metric: str, direction: str, console: Console,
                   found: dict[str, verdicts.Verdict] | None = None, effect: float | None = None,
                   cheaper_note: str | None = None) -> None:
    """The table; ``found`` (from :func:`get_verdicts`) adds the verdict, Δ [95 % CI] and seeds needed columns.

    Design points appear by their short labels (``k=7``; :mod:`..labels`). Wide terminals get one table; narrower
    ones the results and the verdicts as two tables; narrower still, one block of ``name: value`` lines per design
    point (:mod:`dashboards.terminal`). No label, verdict or interval is ever cut. With ``found`` (``effect``: the
    spec's ``search.effect``) a legend line says what the verdicts mean; the best mean is highlighted and called
    the best only when the verdicts show it (:mod:`dashboards.legend`), followed by ``cheaper_note``
    (:func:`get_cheaper`).
    """
    best = best_key(rows, direction)
    labels = short_labels(r.key for r in rows)
    title = f"{metric} ({direction}) by design point — mean ± std over seeds"
    shown = columns.shown(columns.TERMINAL, with_verdicts=bool(found))
    table = columns.summary_rows(rows, found or {})
    verdict_of = {r.point.key: r.verdict for r in table} if found else {}
    highlight = best if not found or legend.decided_best(best, verdict_of) else None
    context = columns.Context(columns.TERMINAL, metric, best, labels, columns.SUMMARY_DECIMALS)
    cells = columns.cells(table, context, shown)
    styles: list[str | None] = ["bold green" if row.key == highlight else None for row in rows]
    terminal.render_table(console, title=title, shown=shown, metric=metric, cells=cells, styles=styles,
                          split=sum(not c.verdicts for c in shown), second_title="verdict against the reference")
    if (abbreviations := label_legend(r.key for r in rows)):
        console.print(f"design points: {abbreviations}", highlight=False)
    if found:
        console.print(legend.verdict_legend(effect=effect, metric=metric), highlight=False)
    if best is not None:
        label = labels[best] if labels[best] == best else f"{labels[best]} ({best})"
        sentence = escape(legend.best_line(best, verdict_of, label=label, cheaper=cheaper_note) or "")
        if highlight is not None:
            sentence = sentence.replace(escape(label), f"[bold green]{escape(label)}[/]", 1)
        console.print(sentence, highlight=False)
