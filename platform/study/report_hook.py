"""The end-of-study publishing: the study runner calls :func:`publish_results` once a study stops.

The report is read from the stores (:mod:`..reports`), built by :mod:`dashboards` and logged to the parent
MLflow run (:func:`build_report_after_study`); the table goes to the parent run's description, its table artifact
and the optuna-dashboard note (:mod:`.notes`). All of it runs once per change of the results: the digest of what
was published (:func:`.notes.results_digest`) is kept on the parent run, and a rerun of a finished study with the
same trials publishes nothing again.
A report is a convenience: whatever goes wrong here is one warning line, never a failed study.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import optuna
from rich.console import Console

from ..records import TAG_RESULTS_DIGEST
from ..reports.publish import report_study
from ..spec.study_spec import StudySpec
from ..stores.locations import Stores
from ..stores.redaction import redact
from .notes import publish_table, results_digest
from .summary import PointSummary
from .tracking import Tracker


class Study(Protocol):
    """What publishing needs of a study's session (:class:`.session.Session` has it)."""

    spec: StudySpec
    stores: Stores
    study: optuna.Study
    tracker: Tracker
    experiment_id: str
    parent_run: str


def publish_results(session: Study, rows: Sequence[PointSummary], found: Mapping[str, Any], *, console: Console,
                    full: bool) -> Path | None:
    """The report (``full``: not after Ctrl-C) and the table where people look; returns the report's path.

    Skipped when the parent run already shows these results (same digest) and the report file is there."""
    study, spec, stores = session.study, session.spec, session.stores
    out = stores.root / "reports" / spec.name
    digest = results_digest(study)
    client = session.tracker.client
    if full and (out / "report.html").is_file() and _published(client, session.parent_run) == digest:
        console.print(f"ablation report: {out / 'report.html'} (results unchanged since it was published: the "
                      "report, the MLflow descriptions and the optuna-dashboard note are as they were)",
                      highlight=False)
        return out / "report.html"
    session.tracker.log_table(session.parent_run, rows)  # the table's numbers on the parent run, for charts
    html = None
    if full:  # not after Ctrl-C: the user wants the prompt back
        html = build_report_after_study(spec.name, stores.storage_url, stores.tracking_uri, out)
        if html is not None:
            console.print(f"ablation report: {html} (also on the MLflow parent run under report/)")
    try:  # the table where people look: the parent run's description and table artifact, optuna-dashboard
        publish_table(session.tracker, study, session.parent_run, session.experiment_id, rows, found,
                      metric=spec.objective.metric, direction=spec.objective.direction,
                      report_path=None if html is None else str(html), effect=spec.search.effect)
    except Exception as exc:  # the results are stored; only their descriptions are missing
        console.print(f"warning: the ablation table was not written to MLflow / optuna-dashboard "
                      f"({(redact(f'{type(exc).__name__}: {exc}') or '')[:300]})", highlight=False)
        return html
    if html is not None:
        client.set_tag(session.parent_run, TAG_RESULTS_DIGEST, digest)
    return html


def _published(client: Any, run_id: str) -> str | None:
    """The digest of the results the parent run shows; None when unknown (never published, or MLflow unreachable:
    then publishing runs, and reports its own failure as one warning)."""
    try:
        return client.get_run(run_id).data.tags.get(TAG_RESULTS_DIGEST)
    except Exception:  # infrastructure fails; the study does not
        return None


def build_report_after_study(spec_name: str, storage_url: str, tracking_uri: str, out_dir: Path) -> Path | None:
    """Write the study's report into ``out_dir`` and log it to the parent run; the HTML's path, or None.

    Never raises (a failure prints one warning line on stderr and returns None).
    """
    try:
        return report_study(spec_name, storage_url, tracking_uri, Path(out_dir)).html
    except Exception as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"warning: no report for study '{spec_name}' ({redact(message)}); retry with: python -m dashboards "
              f"{spec_name} --storage {redact(storage_url)} --tracking-uri {redact(tracking_uri)}", file=sys.stderr)
        return None
