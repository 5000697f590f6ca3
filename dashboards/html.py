"""Self-contained HTML for a study report and the ``--all`` index: inline CSS, PNGs embedded as base64 data URIs,
no scripts, no external links — the file opens offline and survives being attached to an MLflow run.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from . import columns, finalists, interaction, legend, stats
from .paper import COMPARISON_HEADER, Comparison, comparison_cells, comparison_summary
from .report import Report, best_line, caption, table_cells, table_columns, table_header, verdict_legend
from .text import yaml_flow

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #555; font-size: .92em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #d0d7de; padding: .3em .6em; text-align: right; white-space: nowrap; }
th { background: #f3f5f7; white-space: normal; min-width: 3.5em; vertical-align: bottom; }
td:first-child, th:first-child { text-align: left; }
.table-wrap { max-width: 100%; overflow-x: auto; }
tr.best td:first-child { font-weight: bold; }
.caption { font-size: .88em; color: #444; max-width: 1100px; }
.legend { font-size: .92em; max-width: 1100px; margin: .2em 0 .6em; }
.v-better { background: #dcf5dc; } .v-worse { background: #fadcdc; } .v-reference { background: #e6eefc; }
.v-needs { background: #fff3cd; } .v-none { color: #555; } .v-equivalent { background: #eef2f6; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .4em .8em; margin: .5em 0; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 560px; border: 1px solid #eee; } figcaption { font-size: .85em; color: #555; }
"""

_VERDICT_CLASS = {stats.BETTER: "v-better", stats.WORSE: "v-worse", stats.REFERENCE: "v-reference",
                  stats.NEEDS_SEEDS: "v-needs", stats.NO_DIFFERENCE: "v-none", "equivalent": "v-equivalent",
                  "undecided": "v-needs", "pruned": "v-none"}


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = (),
          cell_classes: Sequence[dict[int, str]] = (), links: Sequence[str | None] = ()) -> str:
    """An HTML table of escaped text; ``links`` turns a row's first cell into a relative link."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        classes = cell_classes[i] if i < len(cell_classes) else {}
        link = links[i] if i < len(links) else None
        cells = []
        for j, cell in enumerate(row):
            text = escape(cell)
            if j == 0 and link:
                text = f'<a href="{escape(link)}">{text}</a>'
            cells.append(f'<td class="{classes[j]}">{text}</td>' if j in classes else f"<td>{text}</td>")
        row_class = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    # Headers wrap; a table still wider than the page scrolls inside its own box, so no column is cut off.
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


def image(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def comparison_html(comparison: Comparison) -> str:
    return (table(COMPARISON_HEADER, comparison_cells(comparison))
            + f'<p class="caption">{escape(comparison_summary(comparison))}</p>')


def _verdict_class(verdict: str) -> str:
    return _VERDICT_CLASS.get(verdict, "")


def render_report(report: Report) -> str:
    info = report.info
    counts = ", ".join(f"{n} {state}" for state, n in report.counts.items() if n)
    second = f" + {info.second} (minimised)" if info.second else ""
    parts = [
        f"<h1>{escape(info.name)}</h1>",
        f'<p class="meta">{escape(info.description)}</p>' if info.description else "",
        f'<p class="meta">design <b>{escape(info.design)}</b> · objective <b>{escape(info.metric)}</b> '
        f"({escape(info.direction)}){escape(second)} · seeds {escape(yaml_flow(info.seeds))} · trials: "
        f"{escape(counts or 'none')} · model {escape(info.model_name)} · generated {escape(report.generated)}</p>",
    ]
    parts += [f'<p class="note">{escape(note)}</p>' for note in report.notes]
    parts.append("<h2>Ablation table</h2>")
    if report.rows:
        cells = table_cells(report, columns.HTML)
        best = report.best if legend.decided_best(report.best, {r.point.key: r.verdict for r in report.rows}) \
            else None
        verdict_col = table_columns(columns.HTML).index(columns.VERDICT)
        parts.append(table(table_header(report, columns.HTML), cells,
                           row_classes=["best" if r.point.key == best else "" for r in report.rows],
                           cell_classes=[{verdict_col: _verdict_class(r.verdict)} for r in report.rows]))
        parts.append(f'<p class="legend">{escape(verdict_legend(report))}</p>')
        sentence = best_line(report)
        parts.append(f'<p class="caption">{escape(caption(report))} {escape(sentence or "")}</p>')
    if report.two_way is not None:
        parts.append(two_way_html(report))
    if report.finalists is not None:
        parts.append(f"<h2>Finalists: confirmation round on {escape(report.finalists.seeds)}</h2>")
        heads = [h.replace("{metric}", info.metric) for h in finalists.HEADERS]
        best = [r.key == report.finalists.best for r in report.finalists.rows]
        parts.append(table(heads, finalists.cells(report.finalists), row_classes=["best" if b else "" for b in best]))
        parts.append(f'<p class="caption">{escape(report.finalists.summary())}. The search value is the maximum of '
                     "noisy runs (selected, biased upward); the confirmed value is over fresh seeds the search never "
                     "used; curse = search − confirmed.</p>")
    if report.search is not None:
        parts.append("<h2>Search</h2>")
        parts.append(f'<p class="caption">{escape(report.search.importance_note)}</p>')
        if report.search.importances:
            parts.append(table(["parameter", "importance"],
                               [[k, f"{v:.3f}"] for k, v in report.search.importances.items()]))
    if report.figures:
        parts.append("<h2>Figures</h2>")
        parts += [image(png, text) for text, png in report.figures.values()]
    if report.comparison is not None:
        parts.append("<h2>Compared with the paper</h2>")
        parts.append(comparison_html(report.comparison))
    parts.append('<p class="caption">Files next to this page: table.csv (full precision), table.md (for a paper), '
                 "the PNGs. Without search.effect: better / worse than the reference when the Holm-corrected "
                 "p &lt; α, no detectable difference otherwise, needs more seeds when no test was possible or the "
                 "test could not reach α with so few seeds. With search.effect: better / worse (paired t-test), "
                 "equivalent within ±effect (TOST) or undecided; undecided at max seeds is not evidence of no "
                 "effect. Pruned design points are never compared.</p>")
    return page(f"{info.name} — sasa-lab report", "\n".join(p for p in parts if p))


def two_way_html(report: Report) -> str:
    """The two-factor section: the two-way table, the main effects and interaction, the caption."""
    found = report.two_way
    if found is None:
        return ""
    parts = [f"<h2>Two factors: {escape(found.factors[0])} × {escape(found.factors[1])}</h2>",
             table(interaction.table_header(found), interaction.table_cells(found))]
    if found.rows:
        parts.append(table(interaction.EFFECTS_HEADER, interaction.effect_cells(found),
                           cell_classes=[{3: _verdict_class(r.verdict)} for r in found.rows]))
    parts += [f'<p class="note">{escape(note)}</p>' for note in found.notes]
    parts.append(f'<p class="caption">{escape(interaction.caption(found, report.info.metric))}</p>')
    return "\n".join(parts)


def render_index(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], links: Sequence[str | None],
                 archived: Sequence[Sequence[str]], comparisons: Sequence[tuple[str, Comparison]]) -> str:
    """The ``--all`` page: one row per study (first cell linked to its report), archived studies, paper tables."""
    body = [f"<h1>{escape(title)}</h1>", "<h2>Studies</h2>", table(header, rows, links=links),
            '<p class="caption">Each study links to its report. Paper tables are matched by the parameter a study '
            "varies; the paper's numbers are ImageNet top-1 at full scale, ours are each study's own data.</p>"]
    if comparisons:
        body.append("<h2>Compared with the paper</h2>")
        for name, comparison in comparisons:
            body.append(f"<h3>{escape(name)} ↔ {escape(comparison.table.table)}</h3>")
            body.append(comparison_html(comparison))
    if archived:
        body.append("<h2>Archived studies</h2>")
        body.append(table(["study", "trials (complete)", "created"], archived))
    return page(title, "\n".join(body))
