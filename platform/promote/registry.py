"""The MLflow Model Registry side of promotion: the registry client, the champion's run, the alias holder, the
replacement rule (never move an alias to a worse model without ``force``) and the champion's model version."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ..records import ALIAS_CHAMPION, ATTR_RUN, TAG_STUDY, VERSION_METRIC, VERSION_VALUE
from ..spec.study_spec import StudySpec
from ..stores.connect import StoreError, check_tracking
from ..stores.locations import Stores
from ..stores.redaction import redact
from ..stores.sqlite_files import MLFLOW, store_problem
from .champion import Champion, PromotionError, description, is_better, version_tags


def require_sqlite_file(uri: str, option: str, what: str) -> None:
    """A missing SQLite file means the study never ran there; opening it would create an empty database."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise StoreError(f"{option} {redact(uri)}: no {what} there (run the study first, or pass the "
                         "--storage/--tracking-uri/--runs-dir it used)")


def open_registry(stores: Stores) -> MlflowClient:
    require_sqlite_file(stores.tracking_uri, "--tracking-uri", "MLflow tracking database")
    problem = store_problem(stores.tracking_uri, MLFLOW, "--tracking-uri", empty_ok=False)
    if problem:  # checked read-only: MLflow would otherwise migrate (write) a file that is not its store
        raise StoreError(problem)
    check_tracking(stores.tracking_uri)
    mlflow.set_tracking_uri(stores.tracking_uri)
    mlflow.set_registry_uri(stores.tracking_uri)
    return MlflowClient(tracking_uri=stores.tracking_uri, registry_uri=stores.tracking_uri)


def champion_run(client: Any, run_id: str, stores: Stores) -> Any:
    try:
        return client.get_run(run_id)
    except Exception as exc:
        raise PromotionError(f"the trial's MLflow run {run_id} is not in {redact(stores.tracking_uri)}; pass the "
                             "--tracking-uri the study used") from exc


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def alias_holder(client: Any, name: str, alias: str) -> Any:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _missing(exc) or "not found" in str(exc).lower():
            return None
        raise


def check_replacement(client: Any, name: str, alias: str, champion: Champion, metric: str, direction: str,
                       *, force: bool) -> str | None:
    """Raise :class:`PromotionError` when the alias holder is better (or incomparable) and ``force`` is off;
    returns the line that says a better holder is replaced under ``force`` (None when nothing is overridden)."""
    holder = alias_holder(client, name, alias)
    if holder is None or holder.run_id == champion.trial.user_attrs.get(ATTR_RUN):
        return None
    where = f"{name}@{alias} is version {holder.version}"
    old_metric, old_value = holder.tags.get(VERSION_METRIC), holder.tags.get(VERSION_VALUE)
    if old_metric != metric or old_value is None:
        if not force:
            raise PromotionError(f"{where}, whose objective ({old_metric or 'unknown'}) cannot be compared with "
                                 f"{metric}; rerun with --force to replace it")
    elif is_better(float(old_value), champion.value, direction):
        if not force:
            raise PromotionError(f"{where} with {metric} = {float(old_value):.6g}, better than trial "
                                 f"#{champion.trial.number}'s {champion.value:.6g} ({direction}); rerun with --force "
                                 "to replace it")
        return f"--force: replacing {where} ({metric} = {float(old_value):.6g}) by a worse model"
    return None


MLFLOW_PROGRESS = ("Successfully registered model", "Created version")  # what register_model prints on success
logger = logging.getLogger(__name__)


def version_for(client: Any, name: str, study: str, champion: Champion, spec: StudySpec, run: Any,
                 model_uri: str, *, verdict: str | None = None) -> tuple[Any, bool]:
    """The model version for the champion's run (reused if it exists) and whether it was created now;
    ``verdict``: a line for the description (its design point's verdict and the legend)."""
    run_id = run.info.run_id
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        return min(existing, key=lambda v: int(v.version)), False
    try:
        client.get_registered_model(name)
        new_model = False
    except MlflowException as exc:
        if not _missing(exc):
            raise
        new_model = True
    tags = version_tags(study, champion, spec, run, model_uri)
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):  # MLflow's own progress lines (the caller reports the version)
        version = mlflow.register_model(model_uri, name, tags=tags)  # creates the registered model if needed
    for line in captured.getvalue().splitlines():  # anything else MLflow said (a warning) is passed on, logged
        if line.strip() and not line.startswith(MLFLOW_PROGRESS):
            logger.warning("%s", line)
    if new_model:
        client.update_registered_model(
            name, description=f"SASA backbones promoted from sasa-lab study `{study}` by `python -m platform.promote`; "
            f"load the champion with mlflow.pytorch.load_model('models:/{name}@{ALIAS_CHAMPION}').",
        )
        client.set_registered_model_tag(name, TAG_STUDY, study)
    client.update_model_version(name, str(version.version), description=description(study, champion, spec, run,
                                                                                       verdict=verdict))
    return client.get_model_version(name, str(version.version)), True
