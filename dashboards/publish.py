"""A built report's files: ``report.html`` (self-contained), ``table.csv``, ``table.md`` and the PNGs
(:func:`write_report`).

Sits above :mod:`.report` (the table and figures) and :mod:`.html` (the page). Attaching them with the table's
numbers to the study's parent run, under the names ``platform/records.py`` defines, and reading the stores, is the
platform's part (``platform/reports/publish.py``).
"""

from __future__ import annotations

from pathlib import Path

from . import finalists
from .html import render_report
from .report import Report, table_csv, table_markdown

FILES = ("report.html", "table.csv", "table.md")


def write_report(report: Report, out_dir: Path) -> Path:
    """Write report.html, table.csv, table.md and the PNGs into ``out_dir``; returns the HTML's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (_, png) in report.figures.items():
        (out_dir / name).write_bytes(png)
    (out_dir / "table.csv").write_text(table_csv(report), encoding="utf-8")
    confirmed = "" if report.finalists is None else \
        f"\n\n{finalists.markdown(report.finalists, metric=report.info.metric)}\n"
    (out_dir / "table.md").write_text(f"# {report.info.name}\n\n{table_markdown(report)}{confirmed}",
                                      encoding="utf-8")
    path = out_dir / "report.html"
    path.write_text(render_report(report), encoding="utf-8")
    return path
