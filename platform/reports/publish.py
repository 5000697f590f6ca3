"""Publishing a study's report: read the stores (:mod:`.load`), have the dashboards build and write it
(``report.html``, ``table.csv``, ``table.md``, PNGs) and attach it with the table's numbers to the study's parent
MLflow run (:func:`report_study`). Used by ``python -m dashboards``, the study runner's end-of-study report and
``sasa_lab.build_report``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from ..records import (
    REPORT_ARTIFACTS,
    REPORT_PREFIX,
    REPORT_VERDICT,
    ROLE_STUDY,
    TAG_REPORT_BEST,
    TAG_REPORT_REFERENCE,
    TAG_REPORT_TEST,
    TAG_ROLE,
)
from .confirmed import finalists_of
from .load import load_study, open_mlflow, open_optuna, study_data
from .views import columns, data, publish, report

_MLFLOW_NAME = re.compile(r"[^A-Za-z0-9_\-. :/]")


def parent_run(client: MlflowClient, info: data.StudyInfo) -> str | None:
    """The study's parent MLflow run: the id stored on the study, else the experiment's ``sasa.role=study`` run."""
    if info.parent_run_id:
        try:
            return client.get_run(info.parent_run_id).info.run_id
        except Exception:  # deleted run or another tracking store: fall back to searching by tag
            pass
    experiment = client.get_experiment_by_name(info.name)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_ROLE}` = '{ROLE_STUDY}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


@dataclass(frozen=True)
class Outcome:
    html: Path
    report: report.Report
    parent_run_id: str | None  # where the report was logged (None: not logged)


def report_study(name: str, storage_url: str, tracking_uri: str, out_dir: Path, *, spec: dict[str, Any] | None = None,
                 test: str = "ttest", log: bool = True, notes: Sequence[str] = ()) -> Outcome:
    """Read the stores, write the report into ``out_dir`` and (``log``) attach it to the parent run.

    ``spec``: a resolved spec dict to read the study with; by default (and in every command) the one stored on
    the study, which its trials ran. ``notes``: lines to show first among the report's notes. Raises
    :class:`~dashboards.data.ReportError` for a missing study or an unreachable store.
    """
    study = load_study(open_optuna(storage_url), name, storage_url)
    client = open_mlflow(tracking_uri, write=log)
    built = report.build_report(study_data(study, spec, client), test=test)
    built.finalists = finalists_of(study, spec)
    built.notes[:0] = list(notes)
    run_id = parent_run(client, built.info)
    if run_id is None:
        built.notes.append("no parent MLflow run found for this study: the report was not logged to MLflow")
    path = publish.write_report(built, out_dir)
    if log and run_id is not None:
        log_report(client, run_id, out_dir, built)
    return Outcome(path, built, run_id if log else None)


# --- the report on the parent run -------------------------------------------------------------------------------


def mlflow_name(text: str) -> str:
    """``text`` with every character MLflow refuses in metric/tag names replaced by ``_``."""
    return _MLFLOW_NAME.sub("_", text)


def report_metrics(built: report.Report) -> tuple[dict[str, float], dict[str, str]]:
    """The report's numbers (``report/<point>/<column>``, the columns' metric form) and tags for the parent run."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {TAG_REPORT_TEST: built.test, TAG_REPORT_REFERENCE: built.reference_note[:5000]}
    context = columns.Context(columns.REPORT_METRICS, built.info.metric, built.best)
    for r in built.rows:
        base = f"{REPORT_PREFIX}{mlflow_name(r.point.key)}"
        metrics.update({f"{base}/{k}": v for k, v in columns.values(r, context).items()})
        tags[f"{base}/{REPORT_VERDICT}"] = r.verdict
    if built.best is not None:
        tags[TAG_REPORT_BEST] = built.best
    return metrics, tags


def log_report(client: Any, run_id: str, out_dir: Path, built: report.Report) -> None:
    """Attach the report files under ``report/`` and the table's numbers as metrics/tags of the parent run."""
    for name in (*publish.FILES, *built.figures):  # only the report's own files, whatever else ``out_dir`` holds
        client.log_artifact(run_id, str(out_dir / name), artifact_path=REPORT_ARTIFACTS)
    metrics, tags = report_metrics(built)
    now = int(time.time() * 1000)
    items = [Metric(k, v, now, 0) for k, v in metrics.items()]
    for start in range(0, len(items), 500):
        client.log_batch(run_id, metrics=items[start:start + 500])
    tag_items = [RunTag(k, v) for k, v in tags.items()]
    for start in range(0, len(tag_items), 100):
        client.log_batch(run_id, tags=tag_items[start:start + 100])
