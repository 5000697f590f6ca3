"""A built report's files and MLflow form: write ``report.html`` (self-contained), ``table.csv``, ``table.md`` and
the PNGs (:func:`write_report`), and attach them with the table's numbers to a run (:func:`log_report`).

Sits above :mod:`.report` (the table and figures) and :mod:`.html` (the page). Which run is the study's parent,
and reading the stores, is the platform's part (``platform/reports/publish.py``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag

from . import columns
from .html import render_report
from .report import Report, table_csv, table_markdown

FILES = ("report.html", "table.csv", "table.md")
_MLFLOW_NAME = re.compile(r"[^A-Za-z0-9_\-. :/]")


def write_report(report: Report, out_dir: Path) -> Path:
    """Write report.html, table.csv, table.md and the PNGs into ``out_dir``; returns the HTML's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (_, png) in report.figures.items():
        (out_dir / name).write_bytes(png)
    (out_dir / "table.csv").write_text(table_csv(report), encoding="utf-8")
    (out_dir / "table.md").write_text(f"# {report.info.name}\n\n{table_markdown(report)}", encoding="utf-8")
    path = out_dir / "report.html"
    path.write_text(render_report(report), encoding="utf-8")
    return path


# --- MLflow ----------------------------------------------------------------------------------------------------


def mlflow_name(text: str) -> str:
    """``text`` with every character MLflow refuses in metric/tag names replaced by ``_``."""
    return _MLFLOW_NAME.sub("_", text)


def report_metrics(report: Report) -> tuple[dict[str, float], dict[str, str]]:
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {"report/test": report.test, "report/reference": report.reference_note[:5000]}
    context = columns.Context(columns.REPORT_METRICS, report.info.metric, report.best)
    for r in report.rows:
        base = f"report/{mlflow_name(r.point.key)}"
        metrics.update({f"{base}/{k}": v for k, v in columns.values(r, context).items()})
        tags[f"{base}/verdict"] = r.verdict
    if report.best is not None:
        tags["report/best"] = report.best
    return metrics, tags


def log_report(client: Any, run_id: str, out_dir: Path, report: Report) -> None:
    """Attach the report files under ``report/`` and the table's numbers as metrics/tags of the parent run."""
    for name in (*FILES, *report.figures):  # only the report's own files, whatever else ``out_dir`` holds
        client.log_artifact(run_id, str(out_dir / name), artifact_path="report")
    metrics, tags = report_metrics(report)
    now = int(time.time() * 1000)
    items = [Metric(k, v, now, 0) for k, v in metrics.items()]
    for start in range(0, len(items), 500):
        client.log_batch(run_id, metrics=items[start:start + 500])
    tag_items = [RunTag(k, v) for k, v in tags.items()]
    for start in range(0, len(tag_items), 100):
        client.log_batch(run_id, tags=tag_items[start:start + 100])
