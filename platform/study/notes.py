"""The study's answer where people look in MLflow and optuna-dashboard.

- The experiment's description (MLflow's ``mlflow.note.content`` experiment tag, shown above its runs): the
  question, design, objective and seeds from the spec, and a link to the runs in the model-training view.
- The parent run's description (``mlflow.note.content`` run tag, markdown): the ablation table with verdicts and
  where the report is; the same table as an MLflow table artifact (``mlflow.log_table``, the run's
  Artifacts tab and the experiment's evaluation views can read it).
- The Optuna study's note (optuna-dashboard's ``save_note``): the same markdown table.

The table is the terminal summary's (``summary.PointSummary`` rows and the verdicts of ``summary.get_verdicts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import pandas as pd

from ..labels import short_labels
from ..records import TABLE_ARTIFACT, TAG_NOTE, TRAINING_VIEW_QUERY
from ..reports.views import columns, legend, text
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
    artifacts = f"#/experiments/{experiment_id}/runs/{parent_run}/artifacts"
    where = (f"[`report/report.html`]({artifacts}) on this run (Artifacts tab)"
             + (f"; on disk `{report_path}`" if report_path else "")) if report_path else None
    markdown = table_markdown(rows, found, metric=metric, direction=direction, report=where, effect=effect)
    tracker.client.set_tag(parent_run, TAG_NOTE, markdown)
    tracker.client.log_table(parent_run, data=pd.DataFrame(table_rows(rows, found, metric)),
                             artifact_file=TABLE_ARTIFACT)
    save_study_note(study, table_markdown(rows, found, metric=metric, direction=direction, effect=effect,
                                          report=f"`{report_path}`" if report_path else None))
    return markdown


def save_study_note(study: optuna.Study, markdown: str) -> bool:
    """optuna-dashboard's study note; False when optuna-dashboard (the dev extra) is not installed here."""
    try:
        from optuna_dashboard import save_note  # late: optional, only where optuna-dashboard is installed
    except ImportError:
        return False
    save_note(study, markdown)
    return True
