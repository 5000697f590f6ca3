"""The Python API, for notebooks and scripts: ``import sasa_lab`` (the installed name of this package).

Works where the standard-library ``platform`` is already imported (Jupyter, IPython, pytest plugins), because the
installed package is called ``sasa_lab``. Every function takes the CLI's options as keyword arguments and raises
instead of returning exit codes:

- :func:`run_study` — ``python -m platform.study SPEC --set ...``; returns the study's summary (:class:`StudyResult`)
- :func:`load_results` — one row per trial as a ``pandas.DataFrame``
- :func:`build_report` — ``python -m dashboards STUDY``; returns the report (tables, figures, files written)
- :func:`promote` — ``python -m platform.promote STUDY`` (the promotion's own typed call, re-exported); returns
  a :class:`Promotion` (``.uri`` is ``models:/NAME@ALIAS``) and prints nothing
- :class:`SasaClassifier` — the LightningModule; ``SasaClassifier.load_from_checkpoint(path)`` rebuilds it
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .promote.promotion import Promotion, promote
from .records import ATTR_FAIL, ATTR_MODEL_URI, ATTR_POINT, ATTR_RUN, ROLE_TRIAL, STUDY_SPEC, TAG_ROLE, TrialRecord
from .reports.load import load_study, open_optuna, trial_row
from .reports.publish import Outcome, report_study
from .search import point_from_optuna
from .spec.arguments import path_arg, paths_arg, require, strings_arg
from .spec.study_spec import parse_spec
from .stores.connect import read_only_client
from .stores.locations import Stores, resolve_stores
from .study.run import StudyRequest, StudyResult, quiet_libraries
from .study.run import run_study as _run_study
from .training.classifier import SasaClassifier

__all__ = ["Promotion", "SasaClassifier", "StudyResult", "build_report", "load_results", "promote", "run_study"]

# Named after the trial attributes they carry (design_point, mlflow_run_id, …: records.py).
RESULT_COLUMNS = ("trial", ATTR_POINT, "seed", "state", "value", "params", "flops", "test_acc", ATTR_RUN)
# A row's columns (reports.load.trial_row): value_2 only for two objectives; the search parameters follow.
TRIAL_COLUMNS = (*RESULT_COLUMNS, "value_2", "test_loss", "throughput", "mlflow_status", ATTR_FAIL, ATTR_MODEL_URI)
_DEFAULT_RUNS = Path("runs")


def run_study(
    spec_path: str | Path,
    *overrides: str,
    storage: str | None = None,
    tracking_uri: str | None = None,
    runs_dir: str | Path | None = None,
    workers: int | None = None,
    fresh: bool = False,
    recipes: Sequence[str | Path] = (),
) -> StudyResult:
    """Run or resume the study of ``spec_path``; ``overrides`` are ``"dotted.key=value"`` strings (``--set``);
    ``recipes`` are files merged over the study, left to right, as on the command line (``recipes/*.yaml``).

    Returns the summary: ``result.points`` (one row per design point: mean ± std over seeds, counts, params,
    FLOPs), ``result.done``/``result.total``, ``result.report`` (the HTML report) and ``result.code`` (0 done,
    1 incomplete, 130 interrupted). Raises ``SpecError``, ``StoreError``, ``StudyConflictError``, ``DataError``
    or ``DevicePlanError`` before anything runs.
    """
    path = path_arg("spec_path", spec_path)
    files = paths_arg("recipes", recipes)
    sets = strings_arg("overrides", overrides)
    _store_args(storage, tracking_uri, runs_dir)
    require("fresh", fresh, bool, "True or False")
    require("workers", workers, int, "an integer >= 1 (worker processes)", optional=True)
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers!r} is not valid; give an integer >= 1 (worker processes) or None")
    request = StudyRequest(spec_path=path or Path(), recipes=files, overrides=sets, storage=storage,
                           tracking_uri=tracking_uri, runs_dir=Path(runs_dir or _DEFAULT_RUNS), workers=workers,
                           fresh=fresh, ddp_in_worker=True)
    quiet_libraries()  # as the CLI: library chatter below WARNING, progress and results stay
    return _run_study(request)


def _store_args(storage: Any, tracking_uri: Any, runs_dir: Any) -> None:
    require("storage", storage, str, "a storage URL string, e.g. 'sqlite:///runs/optuna.db'", optional=True)
    require("tracking_uri", tracking_uri, str, "a tracking URI string, e.g. 'sqlite:///runs/mlflow.db'",
            optional=True)
    path_arg("runs_dir", runs_dir, optional=True)


def _stores(storage: str | None, tracking_uri: str | None, runs_dir: str | Path | None) -> Stores:
    _store_args(storage, tracking_uri, runs_dir)
    return resolve_stores(cli_storage=storage, cli_tracking=tracking_uri, spec_storage=None, spec_tracking=None,
                          root=Path(runs_dir or _DEFAULT_RUNS))


def _run_statuses(tracking_uri: str, study_name: str) -> dict[str, str]:
    """MLflow status of every trial run of the study's experiment (empty when there is no tracking store)."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return {}
    client = read_only_client(tracking_uri)
    experiment = client.get_experiment_by_name(study_name)
    if experiment is None:
        return {}
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_ROLE}` = '{ROLE_TRIAL}'",
                              max_results=50_000)
    return {run.info.run_id: run.info.status for run in runs}


def load_results(
    study_name: str, *, storage: str | None = None, tracking_uri: str | None = None, runs_dir: str | Path | None = None
) -> pd.DataFrame:
    """One row per trial of the stored study (read-only), in trial order.

    Columns: ``trial``, ``design_point``, ``seed``, ``state``, ``value`` (the objective; ``value_2`` too for two
    objectives), ``params``, ``flops``, ``test_acc``, ``test_loss``, ``throughput``, ``mlflow_run_id``,
    ``mlflow_status`` (the run's status in MLflow), ``fail_reason``, ``model_uri``, then one column per search
    parameter (its spec value). Spurious trials (which stand for no design point) are left out.
    """
    require("study_name", study_name, str, "a study name string")
    stores = _stores(storage, tracking_uri, runs_dir)
    study = load_study(open_optuna(stores.storage_url), study_name, stores.storage_url)
    spec_dict = study.user_attrs.get(STUDY_SPEC)
    spec = parse_spec(spec_dict, source=f"spec stored with study '{study_name}'", stored=True) if spec_dict else None
    statuses = _run_statuses(stores.tracking_uri, study_name)
    rows: list[dict[str, Any]] = []
    for trial in study.get_trials(deepcopy=False):
        record = TrialRecord.of(trial)
        if record.spurious:
            continue
        status = statuses.get(record.mlflow_run_id or "")
        row = trial_row(trial, TRIAL_COLUMNS, {"mlflow_status": status})
        if spec is not None and record.optuna_params:
            row.update({k: v for k, v in point_from_optuna(spec, record.optuna_params).params.items() if k not in row})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else list(RESULT_COLUMNS))
    return frame.astype({"seed": "Int64", "params": "Int64", "flops": "Int64"}) if rows else frame


def build_report(
    study_name: str,
    *,
    out_dir: str | Path | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    runs_dir: str | Path | None = None,
    test: str = "ttest",
    log: bool = True,
) -> Outcome:
    """Write the study's ablation report (``python -m dashboards STUDY``) and, with ``log``, attach it to the
    study's parent MLflow run. Returns the outcome: ``.html`` (path), ``.report`` (table rows, figures, notes)."""
    require("study_name", study_name, str, "a study name string")
    path_arg("out_dir", out_dir, optional=True)
    require("test", test, str, "'ttest' or 'wilcoxon'")
    require("log", log, bool, "True or False")
    stores = _stores(storage, tracking_uri, runs_dir)
    out = Path(out_dir) if out_dir is not None else stores.root / "reports" / study_name
    return report_study(study_name, stores.storage_url, stores.tracking_uri, out, test=test, log=log)
