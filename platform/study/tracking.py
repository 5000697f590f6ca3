"""The thin MLflow layer: one parent run per study, one nested child run per trial.

Everything goes through :class:`mlflow.MlflowClient` with explicit run ids (no global active run), except model
logging, which MLflow only offers through the fluent API and is wrapped in :func:`log_backbone`.
Tags written here and by the objective are the contract the dashboards and promotion read; their names are in
:mod:`..records` (parent run: role ``study``, study, Optuna storage with the password redacted; child runs: role
``trial``, study, trial number, design point, seed, git commit, MLflow's parent run id).
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.types import Schema, TensorSpec

import sasa
from sasa.models.normalized import Normalized

from ..records import (
    DATASET_CONTEXT_TRAINING,
    EXPERIMENT_KIND_TRAINING,
    METRIC_LR,
    PARENT_METRIC_PREFIX,
    ROLE_STUDY,
    ROLE_TRIAL,
    SOURCE_NAME,
    SPLIT_TRAIN,
    SPLIT_VAL,
    TAG_COMMIT,
    TAG_DATASET_CONTEXT,
    TAG_EXPERIMENT_KIND,
    TAG_FAIL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_SOURCE_COMMIT,
    TAG_SOURCE_NAME,
    TAG_SOURCE_TYPE,
    TAG_STUDY,
    TRAINING_VIEW_QUERY,
)
from ..reports.views import columns
from .model_code import model_code_paths

_MAX_PARAM_LEN = 6000
DATASET_ATTEMPTS = 4


def _unique_violation(exc: Exception) -> bool:
    """A write that lost a race on a unique key (SQLite and PostgreSQL wording)."""
    text = str(exc).lower()
    return "unique constraint" in text or "duplicate key" in text


def git_commit() -> str:
    """The repository's HEAD commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → ``{"a.b": value}``; lists are kept as values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def source_tags(commit: str) -> dict[str, str]:
    """MLflow's standard source tags (the UI's Source column): the command and the bare git commit."""
    tags = {TAG_SOURCE_NAME: SOURCE_NAME, TAG_SOURCE_TYPE: "LOCAL"}
    bare = commit.removesuffix("-dirty")
    if bare and bare != "unknown":
        tags[TAG_SOURCE_COMMIT] = bare
    return tags


def metric_name(text: str) -> str:
    """A design point key as an MLflow metric name part (``window_size=3,heads=2`` → ``window_size:3 heads:2``)."""
    return "".join(c if c.isalnum() or c in "_-. :/" else {"=": ":", ",": " "}.get(c, "_") for c in text)


def table_metrics(rows: Any) -> dict[str, float]:
    """The end-of-study table (``study.summary.PointSummary`` rows) as parent-run metrics
    ``table/<point>/<column>`` (the columns shown in ``columns.TABLE_METRICS``: mean, std, n): the UI's charts of
    the parent run compare design points."""
    metrics: dict[str, float] = {}
    context = columns.Context(columns.TABLE_METRICS)
    for row in columns.summary_rows(rows, {}):
        base = f"{PARENT_METRIC_PREFIX}{metric_name(row.point.key)}"
        metrics.update({f"{base}/{k}": v for k, v in columns.values(row, context).items()})
    return metrics


class Tracker:
    """MLflow access for one study: experiment, parent run, child runs."""

    def __init__(self, tracking_uri: str, *, artifact_root: Path | None = None) -> None:
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.artifact_root = artifact_root

    # -- experiment and parent run ------------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            if experiment.tags.get(TAG_EXPERIMENT_KIND) != EXPERIMENT_KIND_TRAINING:  # made before the tag existed
                self.client.set_experiment_tag(experiment.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND_TRAINING)
            return experiment.experiment_id
        location = None
        if self.artifact_root is not None:
            location = (self.artifact_root / name).resolve().as_uri()
        # Tagged as a model-training experiment: MLflow 3's UI otherwise opens it in its GenAI (traces) view.
        return self.client.create_experiment(name, artifact_location=location,
                                             tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND_TRAINING})

    def open_parent_run(self, experiment_id: str, study: str, run_id: str | None, tags: dict[str, str]) -> str:
        """Reopen the study's parent run (``run_id``) or create it; returns its id, status RUNNING."""
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(
            experiment_id, run_name=study,
            tags={**source_tags(tags.get(TAG_COMMIT, "")), TAG_ROLE: ROLE_STUDY, TAG_STUDY: study, **tags},
        )
        return run.info.run_id

    def close_run(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status, end_time=int(time.time() * 1000))

    # -- child runs ------------------------------------------------------------------------------------------
    def start_child_run(
        self, experiment_id: str, parent_run_id: str, *, name: str, tags: dict[str, str]
    ) -> str:
        run = self.client.create_run(
            experiment_id, run_name=name,
            tags={**source_tags(tags.get(TAG_COMMIT, "")), TAG_ROLE: ROLE_TRIAL, TAG_PARENT: parent_run_id, **tags},
        )
        return run.info.run_id

    def log_dataset(self, run_id: str, data: Any, info: Mapping[str, Any]) -> None:
        """Record the trial's data as an MLflow dataset input (the UI's Dataset column): name, source, digest of
        what shapes the splits, and the image/label schema. ``data`` is the spec's ``DataSpec``, ``info`` the
        data module's ``dataset_info()``. Metadata only: the images stay in the data cache."""
        from mlflow.data.meta_dataset import MetaDataset  # late: only the study runner logs datasets

        source = _dataset_source(data)
        shaping = {k: getattr(data, k, None) for k in ("source", "name", "config", "path", "image_size",
                                                         "val_fraction", "test_fraction", "split_seed",
                                                         "max_train_samples", "grayscale")}
        digest = hashlib.sha256(json.dumps({**shaping, **dict(info)}, sort_keys=True, default=str).encode())
        image = (-1, int(info["channels"]), int(info["image_size"]), int(info["image_size"]))
        schema = Schema([TensorSpec(np.dtype(np.float32), image, "image"),
                         TensorSpec(np.dtype(np.int64), (-1,), "label")])
        name = str(info.get("name") or data.source)
        dataset = MetaDataset(source, name=name, digest=digest.hexdigest()[:8], schema=schema)
        context = InputTag(TAG_DATASET_CONTEXT, DATASET_CONTEXT_TRAINING)
        inputs = [DatasetInput(dataset._to_mlflow_entity(), tags=[context])]
        for attempt in range(DATASET_ATTEMPTS):
            try:
                self.client.log_inputs(run_id, datasets=inputs)
                return
            except MlflowException as exc:
                # MLflow creates an experiment's dataset row on first use, with no lock: workers that log the same
                # dataset at the same moment collide on its unique key, and the loser's transaction is rolled back.
                # The row exists now, so the next attempt only links this run to it.
                if attempt == DATASET_ATTEMPTS - 1 or not _unique_violation(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def log_table(self, run_id: str, rows: Any) -> None:
        """The ablation table's numbers on the parent run (see :func:`table_metrics`)."""
        self.log_metrics(run_id, table_metrics(rows))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [Param(key, str(value)[:_MAX_PARAM_LEN]) for key, value in flatten(params).items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [
            Metric(key, float(value), now, step)
            for key, value in metrics.items()
            if value is not None and math.isfinite(float(value))
        ]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def close_stale_children(self, experiment_id: str, parent_run_id: str, live_run_ids: set[str], *,
                             reason_of: Callable[[Any], str | None] | None = None) -> list[str]:
        """Close child runs left RUNNING by a killed process as FAILED, tagged with ``reason_of(run)`` where the
        trial's failure is known (a lost worker or node); returns their ids."""
        closed = []
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TAG_PARENT}` = '{parent_run_id}' and attributes.status = 'RUNNING'",
        )
        for run in runs:
            if run.info.run_id not in live_run_ids:
                reason = (reason_of(run) if reason_of else None) or "process died (closed at next start)"
                self.set_tags(run.info.run_id, {TAG_FAIL: reason})
                self.close_run(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
                closed.append(run.info.run_id)
        return closed

    def log_backbone(self, run_id: str, model: Any, input_example: Any, *, mean: Sequence[float],
                     std: Sequence[float], step: int = 0) -> str:
        """Log the trained backbone as an MLflow model that takes raw images (values in [0, 1]): the training
        split's normalisation (``mean``, ``std`` per channel) goes inside it (:class:`sasa.models.normalized.
        Normalized`), so ``mlflow models serve`` and ``load_model`` callers send images as they are.
        ``input_example`` is a normalised batch (``(B, C, S, S)``, as the data module yields); the logged example
        and signature are its raw form. The model's SASA2d layers are switched (in place) to the "auto" backend,
        so the logged model runs wherever it is loaded (Triton on CUDA when installed, the torch kernels
        elsewhere) whatever backend it trained with: a Triton-trained model cannot run on a CPU otherwise. Returns
        the model URI.

        ``step``: the epoch of the checkpoint the model holds. MLflow 3 links to a logged model the run's metrics at
        the step it is logged at, which its model page, the registry's version and ``search_logged_models`` show:
        at the best epoch that is the checkpoint's own validation metrics and its test metrics (logged there by the
        objective), not epoch 0's."""
        import mlflow.pytorch  # late: heavy (pulls pytorch_lightning), only to log a model
        from mlflow.models import infer_signature  # late: as above

        code_paths = model_code_paths(model)  # of the backbone (its ``config`` names a user's builder, if any)
        model = Normalized(sasa.set_backend(model, "auto").eval().cpu(), mean, std).eval()
        raw = input_example.cpu() * model.std + model.mean  # (B, C, S, S) back to [0, 1]
        example = raw.numpy()
        with torch.no_grad():
            output = model(raw).numpy()
        signature = infer_signature(example, output)
        # The model's classes live in ``sasa`` (and a user's own builder's modules): shipping their source with
        # the model makes it loadable anywhere. Pickle, not MLflow 3's default "pt2" export: an exported graph is
        # specialised to the example's batch size (a model logged with a batch of 2 refuses a batch of 3).
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pytorch.log_model(
                model,
                name="model",
                signature=signature,
                input_example=example,
                code_paths=code_paths,
                serialization_format="pickle",
                step=step,
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            )
        return info.model_uri


def _dataset_source(data: Any) -> Any:
    """Where the images come from, as an MLflow dataset source."""
    if data.source == "hf":
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource  # late: only for hf data

        return HuggingFaceDatasetSource(path=data.name, config_name=data.config)
    from mlflow.data.code_dataset_source import CodeDatasetSource  # late: as above, only when logging a dataset

    where = "sklearn.datasets.load_digits" if data.source == "digits" else str(data.path)
    return CodeDatasetSource({"source": where, "kind": str(data.source)})


class MlflowEpochLogger(pl.Callback):
    """Logs Lightning's epoch metrics to an MLflow run, step = epoch.

    Lightning calls plain callbacks' epoch-end hooks *before* the module's, where our metrics are computed, so
    validation metrics are logged at ``on_validation_end`` and training metrics once the epoch has fully ended
    (at the next epoch's start, and at the end of training).
    """

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id

    def _log(self, trainer: pl.Trainer, prefix: str, epoch: int) -> None:
        if trainer.sanity_checking or trainer.global_rank != 0:
            return
        metrics = {
            key: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(prefix) and value.numel() == 1
        }
        self.tracker.log_metrics(self.run_id, metrics, step=epoch)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._log(trainer, f"{SPLIT_TRAIN}/", trainer.current_epoch - 1)
        if trainer.global_rank == 0 and trainer.optimizers:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.tracker.log_metrics(self.run_id, {METRIC_LR: lr}, step=trainer.current_epoch)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log(trainer, f"{SPLIT_VAL}/", trainer.current_epoch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log(trainer, f"{SPLIT_TRAIN}/", trainer.current_epoch - 1 if trainer.current_epoch > 0 else 0)


def experiment_url(experiment_id: str, base: str = "http://127.0.0.1:5000") -> str:
    """The MLflow UI page of an experiment's runs in the model-training view (MLflow 3 opens GenAI by default)."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW_QUERY}"
