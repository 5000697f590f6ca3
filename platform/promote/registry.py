"""The MLflow Model Registry side of promotion: the registry client, the champion's run, the alias holder, the
replacement rule (never move an alias to a worse model without ``force``) and the champion's model version."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ..records import ATTR_RUN, TAG_STUDY
from ..spec.study_spec import StudySpec
from ..stores.connect import StoreError, check_tracking
from ..stores.locations import Stores
from ..stores.redaction import redact
from ..stores.sqlite_files import MLFLOW, store_problem
from .champion import TAG_METRIC, TAG_VALUE, Champion, PromotionError, description, is_better, version_tags


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
                       *, force: bool) -> None:
    holder = alias_holder(client, name, alias)
    if holder is None or holder.run_id == champion.trial.user_attrs.get(ATTR_RUN):
        return
    where = f"{name}@{alias} is version {holder.version}"
    old_metric, old_value = holder.tags.get(TAG_METRIC), holder.tags.get(TAG_VALUE)
    if old_metric != metric or old_value is None:
        if not force:
            raise PromotionError(f"{where}, whose objective ({old_metric or 'unknown'}) cannot be compared with "
                                 f"{metric}; rerun with --force to replace it")
    elif is_better(float(old_value), champion.value, direction):
        if not force:
            raise PromotionError(f"{where} with {metric} = {float(old_value):.6g}, better than trial "
                                 f"#{champion.trial.number}'s {champion.value:.6g} ({direction}); rerun with --force "
                                 "to replace it")
        print(f"--force: replacing {where} ({metric} = {float(old_value):.6g}) by a worse model")


def version_for(client: Any, name: str, study: str, champion: Champion, spec: StudySpec, run: Any,
                 model_uri: str) -> tuple[Any, bool]:
    """The model version for the champion's run (reused if it exists) and whether it was created now."""
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
    with contextlib.redirect_stderr(sys.stdout):  # MLflow's progress lines; stderr is kept for errors
        version = mlflow.register_model(model_uri, name, tags=tags)  # creates the registered model if needed
    if new_model:
        client.update_registered_model(
            name, description=f"SASA backbones promoted from sasa-lab study `{study}` by `python -m platform.promote`; "
            f"load the champion with mlflow.pytorch.load_model('models:/{name}@champion').",
        )
        client.set_registered_model_tag(name, TAG_STUDY, study)
    client.update_model_version(name, str(version.version), description=description(study, champion, spec, run))
    print(f"registered {name} version {version.version} from {model_uri} (MLflow run {run_id})")
    return client.get_model_version(name, str(version.version)), True
