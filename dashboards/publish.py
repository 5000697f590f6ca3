"""Publishing a study's report: write ``report.html`` (self-contained), ``table.csv``, ``table.md`` and the PNGs,
and attach them with the table's numbers to the study's parent MLflow run (:func:`report_study`).

Sits above :mod:`.report` (the table and figures) and :mod:`.html` (the page).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag

from .collect import StudyInfo, load_study, open_mlflow, open_optuna, stored_spec
from .html import render_report
from .lab import records
from .report import Report, build_report, table_csv, table_markdown

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
    for r in report.rows:
        base = f"report/{mlflow_name(r.point.key)}"
        values = {"mean": r.summary.mean, "std": r.summary.std, "ci_low": r.summary.ci_low,
                  "ci_high": r.summary.ci_high, "p_holm": r.p_holm,
                  "diff": r.paired.mean_diff if r.paired else None, "test_acc": r.point.test_acc}
        metrics.update({f"{base}/{k}": float(v) for k, v in values.items() if v is not None and v == v})
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


def parent_run(client: Any, info: StudyInfo) -> str | None:
    """The study's parent MLflow run: the id stored on the study, else the experiment's ``sasa.role=study`` run."""
    if info.parent_run_id:
        try:
            return client.get_run(info.parent_run_id).info.run_id
        except Exception:  # deleted run or another tracking store: fall back to searching by tag
            pass
    experiment = client.get_experiment_by_name(info.name)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{records.TAG_ROLE}` = 'study'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


@dataclass(frozen=True)
class Outcome:
    html: Path
    report: Report
    parent_run_id: str | None  # where the report was logged (None: not logged)


def report_study(name: str, storage_url: str, tracking_uri: str, out_dir: Path, *, spec: dict[str, Any] | None = None,
                 test: str = "ttest", log: bool = True) -> Outcome:
    """Read the stores, write the report into ``out_dir`` and (``log``) attach it to the parent run.

    ``spec``: the resolved spec dict (from the YAML); by default the one stored on the study. Raises
    :class:`~.collect.ReportError` for a missing study or an unreachable store.
    """
    study = load_study(open_optuna(storage_url), name, storage_url)
    client = open_mlflow(tracking_uri)
    report = build_report(study, spec if spec is not None else stored_spec(study), client, test=test)
    run_id = parent_run(client, report.info)
    if run_id is None:
        report.notes.append("no parent MLflow run found for this study: the report was not logged to MLflow")
    path = write_report(report, out_dir)
    if log and run_id is not None:
        log_report(client, run_id, out_dir, report)
    return Outcome(path, report, run_id if log else None)
