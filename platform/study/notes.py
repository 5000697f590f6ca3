"""The study's answer where people look in MLflow and optuna-dashboard.

- The experiment's description (MLflow's ``mlflow.note.content`` experiment tag, shown above its runs): the
  question, design, objective and seeds from the spec, and a link to the runs in the model-training view.
- The parent run's description (``mlflow.note.content`` run tag, markdown): the ablation table with verdicts, the
  verdicts' legend and where the report is; the same table as an MLflow table artifact (the format of
  ``MlflowClient.log_table``, which the run's Artifacts tab and the experiment's evaluation views read), written
  whole each time (``log_table`` would append to the existing file: :func:`replace_table`).
- The Optuna study's note (optuna-dashboard's ``save_note``): the same markdown table, saved only when it changed.

Each is one current copy however often the end-of-study step runs; the step itself runs once per change of the
results (:func:`results_digest`, kept on the parent run by the study runner).

The table is the terminal summary's (``summary.PointSummary`` rows and the verdicts of ``summary.get_verdicts``); a
sampled design's finalists table (``reports.confirmed.finalists_of``) follows it in the description and the note.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from ..labels import short_labels
from ..records import (
    LOGGED_TABLE_TYPE,
    STUDY_FINGERPRINT,
    TABLE_ARTIFACT,
    TAG_LOGGED_ARTIFACTS,
    TAG_NOTE,
    TRAINING_VIEW_QUERY,
)
from ..reports.confirmed import finalists_of
from ..reports.views import columns, finalists, legend, text
from ..spec.study_spec import StudySpec
from .summary import PointSummary, best_key
from .tracking import Tracker


def experiment_note(spec: StudySpec, experiment_id: str) -> str:
    """The experiment's description, in markdown, from the spec (values as YAML)."""
    resolved = spec.resolved_dict()
    search, objective = resolved.get("search", {}), resolved.get("objective", {})
    lines = [f"**{spec.name}** — {spec.description or 'a sasa-lab study'}", ""]
    lines += [f"- parameter `{name}`: {text.yaml_flow(_levels(value))}"
              for name, value in (search.get("parameters") or {}).items()]
    design = f"- design: {search.get('design')}, seeds: {text.yaml_flow(search.get('seeds'))}"
    if search.get("effect") is not None:
        design += f", effect ±{search['effect']}"
    if search.get("reference"):
        design += f", reference {text.yaml_flow(search['reference'])}"
    second = f", then {objective['second']} (minimised)" if objective.get("second") else ""
    lines += [
        design,
        f"- objective: {objective.get('metric')} ({objective.get('direction')}){second}",
        f"- model: {resolved.get('model', {}).get('name')}; data: {resolved.get('data', {}).get('source')}",
        "",
        "One parent run (the ablation table, the report under `report/`, `spec.yaml`) and one child run per "
        f"trial. [Open the runs in the model-training view](#/experiments/{experiment_id}/runs?"
        f"{TRAINING_VIEW_QUERY}): MLflow 3.17 opens an experiment in the view chosen in its sidebar.",
    ]
    return "\n".join(lines)


def _levels(parameter: Any) -> Any:
    """A parameter as one reads it: a categorical's list of choices, else its mapping without empty keys."""
    if isinstance(parameter, dict):
        plain = {k: v for k, v in parameter.items() if v is not None and v is not False}
        if plain.get("type") == "categorical" and "choices" in plain:
            return plain["choices"]
        return plain
    return parameter


def table_rows(rows: Sequence[PointSummary], found: Mapping[str, Any], metric: str) -> list[dict[str, Any]]:
    """One dict per design point: the terminal summary's columns, full precision where numbers."""
    context = columns.Context(columns.TABLE, metric, labels=short_labels(r.key for r in rows))
    return [columns.values(row, context) for row in columns.summary_rows(rows, found)]


def table_markdown(rows: Sequence[PointSummary], found: Mapping[str, Any], *, metric: str, direction: str,
                   report: str | None, effect: float | None = None) -> str:
    """The ablation table as markdown, then the verdicts' legend (with ``found``: ``effect`` is the spec's
    ``search.effect``), what the best mean is (in bold only when shown best) and where the report is."""
    best = best_key(list(rows), direction)
    table = columns.summary_rows(rows, found)
    verdict_of = {r.point.key: r.verdict for r in table}
    shown = columns.shown(columns.NOTE, with_verdicts=bool(found))
    header = [c.title(metric) for c in shown]
    lines = [f"**Ablation table** — {metric} ({direction}), mean ± std over seeds", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    bold = best if legend.decided_best(best, verdict_of) else None
    context = columns.Context(columns.NOTE, metric, bold, decimals=columns.SUMMARY_DECIMALS)
    lines += ["| " + " | ".join(line) + " |" for line in columns.cells(table, context, shown)]
    lines.append("")
    if found:
        lines.append(legend.verdict_legend(effect=effect, metric=metric))
        lines.append("")
    sentence = legend.best_line(best, verdict_of if found else {}, markdown=True)
    if sentence:
        lines.append(sentence)
    if report:
        lines.append(f"Full report (statistics, plots, paper comparison): {report}")
    return "\n".join(lines)


def describe_experiment(tracker: Tracker, experiment_id: str, spec: StudySpec) -> None:
    tracker.client.set_experiment_tag(experiment_id, TAG_NOTE, experiment_note(spec, experiment_id))


def publish_table(tracker: Tracker, study: optuna.Study, parent_run: str, experiment_id: str,
                  rows: Sequence[PointSummary], found: Mapping[str, Any], *, metric: str, direction: str,
                  report_path: str | None, effect: float | None = None) -> str:
    """The ablation table as the parent run's description, its table artifact and the Optuna study's note;
    returns the markdown."""
    artifacts = f"#/experiments/{experiment_id}/runs/{parent_run}/artifacts?{TRAINING_VIEW_QUERY}"  # training view
    where = (f"[`report/report.html`]({artifacts}) on this run (Artifacts tab)"
             + (f"; on disk `{report_path}`" if report_path else "")) if report_path else None
    confirmed = finalists_of(study)  # a sampled design's confirmation round, after the table as the report has it
    extra = "" if confirmed is None else "\n\n" + finalists.markdown(confirmed, metric=metric)
    markdown = table_markdown(rows, found, metric=metric, direction=direction, report=where, effect=effect) + extra
    tracker.client.set_tag(parent_run, TAG_NOTE, markdown)
    replace_table(tracker.client, parent_run, pd.DataFrame(table_rows(rows, found, metric)), TABLE_ARTIFACT)
    save_study_note(study, table_markdown(rows, found, metric=metric, direction=direction, effect=effect,
                                          report=f"`{report_path}`" if report_path else None) + extra)
    return markdown


def replace_table(client: Any, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
    """Write ``frame`` as the run's MLflow table ``artifact_file`` (``log_table``'s JSON, ``orient="split"``),
    replacing the file if it is there — ``MlflowClient.log_table`` would append its rows to the old ones — and
    list it in the run's ``mlflow.loggedArtifacts`` tag, as ``log_table`` does, for the UI's table views."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(artifact_file).name
        frame.to_json(path, orient="split", index=False, date_format="iso")
        parent = str(Path(artifact_file).parent)
        client.log_artifact(run_id, str(path), artifact_path=None if parent == "." else parent)
    listed = json.loads(client.get_run(run_id).data.tags.get(TAG_LOGGED_ARTIFACTS, "[]"))
    entry = {"path": artifact_file, "type": LOGGED_TABLE_TYPE}
    if entry not in listed:
        client.set_tag(run_id, TAG_LOGGED_ARTIFACTS, json.dumps([*listed, entry]))


def results_digest(study: optuna.Study) -> str:
    """A digest of everything the published table and report are computed from: the spec's fingerprint and every
    trial's number, state, values and attributes. Equal digests: publishing again would write the same things."""
    trials = [[t.number, t.state.name, t.values, t.user_attrs] for t in study.get_trials(deepcopy=False)]
    payload = json.dumps([study.user_attrs.get(STUDY_FINGERPRINT), trials], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def save_study_note(study: optuna.Study, markdown: str) -> bool:
    """optuna-dashboard's study note, saved only when its text changed (each save is a new note version); False
    when optuna-dashboard (the dev extra) is not installed here."""
    try:
        from optuna_dashboard import get_note, save_note  # late: optional, only where optuna-dashboard is installed
    except ImportError:
        return False
    if get_note(study) != markdown:
        save_note(study, markdown)
    return True
