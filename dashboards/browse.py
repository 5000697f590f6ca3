"""Read-only views of the stores for ``python -m dashboards``: ``--list``, ``--export STUDY``, ``--compare A B``.

Nothing here writes: the Optuna storage and the MLflow tracking store are opened the way the report opens them
(a missing SQLite file is an error, never created), no experiment, run, table or attribute is made, and the
only files written are the ones ``--export`` is asked for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from .data import ReportError, best_key
from .lab import load, records
from .lab import spec as spec_module
from .report import build_table

EXPORT_COLUMNS = ("trial", "state", records.ATTR_POINT, "seed", "value", "spurious", "params", "flops", "throughput",
                  "test_acc", records.ATTR_FAIL, records.ATTR_RUN, records.ATTR_MODEL_URI, "start",
                  "complete")  # then param:*, MLflow; named after the trial attributes they carry
LIST_HEADER = ("study", "design", "done of planned", "pruned/failed", "running", "best by mean", "last update")


# --- --list ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyLine:
    """One study of the storage, as ``--list`` shows it: ``planned`` is (fewest, most) (design point, seed) pairs
    the spec can run — equal for a list of seeds, a range for adaptive seeds {min, max}; None when unknown."""

    name: str
    design: str
    done: int
    planned: tuple[int, int] | None
    pruned: int
    failed: int
    running: int
    best: str
    last_update: dt.datetime | None

    def cells(self) -> list[str]:
        when = "—" if self.last_update is None else self.last_update.strftime("%Y-%m-%d %H:%M")
        return [self.name, self.design, f"{self.done} of {planned_label(self.planned)}",
                f"{self.pruned}/{self.failed}", str(self.running), self.best, when]


def planned_label(planned: tuple[int, int] | None) -> str:
    """``30``, ``10–30`` (adaptive seeds) or ``?``."""
    if planned is None:
        return "?"
    low, high = planned
    return str(low) if low == high else f"{low}–{high}"


def _seed_counts(seeds: Any) -> tuple[int, int]:
    """(fewest, most) seeds per design point: a list runs all of them, {min, max} between min and max."""
    if isinstance(seeds, dict):
        return int(seeds.get("min", 1)), int(seeds.get("max", seeds.get("min", 1)))
    return (len(seeds), len(seeds)) if seeds else (1, 1)


def planned_seeds(spec: dict[str, Any]) -> set[int] | None:
    """The seeds the spec can run (adaptive seeds are numbered from 0); None: any."""
    seeds = (spec.get("search") or {}).get("seeds")
    if isinstance(seeds, dict):
        return set(range(_seed_counts(seeds)[1]))
    return {int(s) for s in seeds} if isinstance(seeds, list) else None


def planned_total(spec: dict[str, Any]) -> tuple[int, int] | None:
    """(fewest, most) (design point, seed) pairs the spec asks for: grid points × seeds, or ``n_trials`` × seeds;
    None if unknown."""
    search = spec.get("search") or {}
    low, high = _seed_counts(search.get("seeds"))
    if search.get("design", "grid") != "grid":
        n_trials = search.get("n_trials")
        return None if n_trials is None else (int(n_trials) * low, int(n_trials) * high)
    try:
        parsed = spec_module.parse_spec(spec, source="stored spec", stored=True)
    except spec_module.SpecError:
        return None
    points = len(list(spec_module.parameters.combos(parsed.search, list(parsed.search.parameters))))
    return points * low, points * high


def _last_update(trials: Sequence[FrozenTrial]) -> dt.datetime | None:
    stamps = [t.datetime_complete or t.datetime_start for t in trials]
    known = [s for s in stamps if s is not None]
    return max(known) if known else None


def _best(study: optuna.Study) -> str:
    """The design point with the best mean over its seeds, its mean and its verdict (the report's table)."""
    info = load.study_info(study, load.stored_spec(study))
    rows, _ = build_table(load.point_info(study, info), info)
    best = best_key([r.point for r in rows], info.direction)
    if best is None:
        return "—"
    row = next(r for r in rows if r.point.key == best)
    verdict = "" if row.verdict in ("", "—") else f", {row.verdict}"
    return f"{best}: {info.metric} {row.summary.mean:.4f} over {row.summary.n} seed{'s' * (row.summary.n != 1)}" \
           f"{verdict}"


def study_line(study: optuna.Study) -> StudyLine:
    trials = study.get_trials(deepcopy=False)
    spec = study.user_attrs.get(records.STUDY_SPEC)
    spec = spec if isinstance(spec, dict) else {}
    seeds = planned_seeds(spec)
    done = {pair for t in trials if records.is_done(t) and (pair := records.pair_of(t)) is not None
            and (seeds is None or pair[1] in seeds)}  # pairs of the plan: a stray seed is not progress
    live = [t for t in trials if not records.is_spurious(t)]
    try:
        best = _best(study) if spec else "—"
    except Exception:  # a study the report cannot read (an old spec): the list still shows it
        best = "?"
    return StudyLine(
        name=study.study_name,
        design=str((spec.get("search") or {}).get("design", "?")),
        done=len(done),
        planned=planned_total(spec) if spec else None,
        pruned=sum(t.state == TrialState.PRUNED for t in live),
        failed=sum(records.is_failure(t) for t in live),
        running=sum(t.state == TrialState.RUNNING for t in live),
        best=best,
        last_update=_last_update(trials),
    )


def list_studies(storage: optuna.storages.BaseStorage) -> list[StudyLine]:
    """Every study of the storage (archived ones last), one line each."""
    names = sorted(load.study_names(storage), key=lambda n: (records.ARCHIVE_MARK in n, n))
    return [study_line(optuna.load_study(study_name=n, storage=storage)) for n in names]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- --export ---------------------------------------------------------------------------------------------------


def _run_columns(client: Any, run_id: str | None) -> dict[str, Any]:
    """The trial's MLflow run: name, status, times, and every metric's last value as ``metric:<key>``."""
    if client is None or not run_id:
        return {}
    try:
        run = client.get_run(run_id)
    except Exception:  # a run deleted or in another tracking store: the trial row stays, without MLflow columns
        return {"mlflow_status": "missing"}
    info = run.info
    out: dict[str, Any] = {
        "mlflow_run_name": info.run_name, "mlflow_status": info.status,
        "mlflow_start": pd.to_datetime(info.start_time, unit="ms", utc=True) if info.start_time else None,
        "mlflow_end": pd.to_datetime(info.end_time, unit="ms", utc=True) if info.end_time else None,
        "mlflow_artifact_uri": info.artifact_uri,
    }
    out.update({f"metric:{k}": float(v) for k, v in sorted(run.data.metrics.items())})
    return out


def export_frame(study: optuna.Study, client: Any) -> pd.DataFrame:
    """One row per trial (Optuna's record) joined with its child MLflow run (by the trial's run id)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        record = records.TrialRecord.of(trial)
        row = load.trial_row(trial, EXPORT_COLUMNS)
        row.update({f"param:{k}": str(v) for k, v in record.optuna_params.items()})
        row.update(_run_columns(client, record.mlflow_run_id))
        rows.append(row)
    return pd.DataFrame(rows)


def export_study(study: optuna.Study, client: Any, out: Path) -> tuple[Path, Path]:
    """Write ``<out>/<study>-trials.csv`` and ``.parquet``; returns both paths."""
    frame = export_frame(study, client)
    made = [p for p in (out, *out.parents) if not p.exists()]
    csv_path, parquet_path = out / f"{study.study_name}-trials.csv", out / f"{study.study_name}-trials.parquet"
    partial = [p.with_name(f".{p.name}.partial") for p in (csv_path, parquet_path)]
    try:  # both files whole, or neither (and no folder made for them)
        out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(partial[0], index=False)
        frame.to_parquet(partial[1], index=False)
        os.replace(partial[0], csv_path)
        os.replace(partial[1], parquet_path)
    except BaseException:
        for path in partial:
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in made:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return csv_path, parquet_path


# --- --compare --------------------------------------------------------------------------------------------------


def ablation_rows(study: optuna.Study) -> tuple[str, dict[str, tuple[str, str, str]]]:
    """(metric, {design point: (mean ± std, n ok/pruned/failed, verdict)}) of one study's ablation table."""
    info = load.study_info(study, load.stored_spec(study))
    rows, _ = build_table(load.point_info(study, info), info)
    out = {}
    for row in rows:
        s, p = row.summary, row.point
        value = "—" if s.mean is None else f"{s.mean:.4f}" + ("" if s.std is None else f" ± {s.std:.4f}")
        out[p.key] = (value, f"{p.n_complete}/{p.n_pruned}/{p.n_failed}", row.verdict)
    return info.metric, out


def compare_markdown(storage: optuna.storages.BaseStorage, storage_url: str, a: str, b: str) -> str:
    """Two studies' ablation tables side by side, joined on the design point (``—`` where one lacks it)."""
    metric_a, rows_a = ablation_rows(load.load_study(storage, a, storage_url))
    metric_b, rows_b = ablation_rows(load.load_study(storage, b, storage_url))
    header = ["design point", f"{a}: {metric_a}", f"{a}: n", f"{a}: verdict",
              f"{b}: {metric_b}", f"{b}: n", f"{b}: verdict"]
    keys = list(rows_a) + [k for k in rows_b if k not in rows_a]
    empty = ("—", "—", "—")
    body = [[key, *rows_a.get(key, empty), *rows_b.get(key, empty)] for key in keys]
    if not body:
        raise ReportError(f"neither '{a}' nor '{b}' has a design point yet: nothing to compare")
    return markdown_table(header, body)
