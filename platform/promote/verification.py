"""Verification before an alias moves: re-evaluate the registered model on the study's test split (CPU, eval mode,
float32) and compare with the trial's logged ``test/acc`` (absolute) and ``test/loss`` (relative) within a
tolerance; the result is written on the model version as ``sasa.verification*`` tags.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pytorch
import torch
import torch.nn.functional as F
from optuna.trial import FrozenTrial

from ..data import build_datamodule
from ..records import ATTR_SEED, ATTR_TEST
from ..search import point_from_optuna, resolve
from ..spec import StudySpec
from ..stores import Stores
from .champion import TAG_VERIFY, TAG_VERIFY_TOL, Champion, PromotionError, UnusableModelError, one_line


@dataclass(frozen=True)
class Verification:
    passed: bool
    acc: float
    loss: float
    summary: str  # both comparisons in one line
    input_mean: list[float]  # the normalisation the model expects (training split statistics)
    input_std: list[float]


def evaluate(model: torch.nn.Module, loader: Any, *, label_smoothing: float = 0.0) -> tuple[float, float, int]:
    """Top-1 accuracy, mean cross-entropy and example count of ``model`` over ``loader`` (eval mode, no grad).

    MLflow 3 logs PyTorch models as ``torch.export`` programs by default: loaded, they are graphs fixed in the
    mode they were exported in (``stores.tracking.log_backbone`` exports in eval mode) and refuse ``eval()``.
    """
    with contextlib.suppress(NotImplementedError):  # an exported graph is already in eval mode
        model.eval()
    dtype = next(model.parameters()).dtype
    correct, loss_sum, count = 0, 0.0, 0
    with torch.inference_mode():
        for images, labels in loader:
            logits = model(images.to(dtype))  # (B, num_classes)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing, reduction="sum")
            loss_sum += float(loss)
            correct += int((logits.argmax(dim=1) == labels).sum())
            count += int(labels.numel())
    if count == 0:
        raise PromotionError("the test split is empty; nothing to verify against")
    return correct / count, loss_sum / count, count


def verify(model_uri: str, spec: StudySpec, trial: FrozenTrial, cache_dir: Path, tolerance: float) -> Verification:
    """Re-evaluate ``model_uri`` on the study's test split and compare with the trial's logged test metrics."""
    logged = trial.user_attrs.get(ATTR_TEST) or {}
    if "test/acc" not in logged or "test/loss" not in logged:
        raise PromotionError(f"trial #{trial.number} has no logged test/acc and test/loss to verify against")
    _, train = resolve(spec, point_from_optuna(spec, trial.params))
    try:
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except Exception as exc:
        raise UnusableModelError(f"cannot load {model_uri}: {one_line(exc)}") from exc
    datamodule = build_datamodule(spec.data, batch_size=train.batch_size, seed=int(trial.user_attrs.get(ATTR_SEED, 0)),
                                  cache_dir=cache_dir, num_workers=0)
    datamodule.setup("test")
    try:
        acc, loss, count = evaluate(model, datamodule.test_dataloader(), label_smoothing=train.label_smoothing)
    except PromotionError:
        raise
    except Exception as exc:  # e.g. an exported graph that only accepts its example's batch size
        raise UnusableModelError(f"{model_uri} fails on test batches of {train.batch_size} images: "
                                 f"{type(exc).__name__}: {one_line(exc)}") from exc
    logged_acc, logged_loss = float(logged["test/acc"]), float(logged["test/loss"])
    acc_ok = abs(acc - logged_acc) <= tolerance
    loss_ok = abs(loss - logged_loss) <= tolerance * max(1.0, abs(logged_loss))
    summary = (f"test/acc {acc:.6f} vs logged {logged_acc:.6f} (|Δ| {abs(acc - logged_acc):.2e}), test/loss "
               f"{loss:.6f} vs logged {logged_loss:.6f} (|Δ| {abs(loss - logged_loss):.2e}) on {count} test images, "
               f"tolerance {tolerance:g}")
    return Verification(acc_ok and loss_ok, acc, loss, summary, datamodule.mean, datamodule.std)


def verify_version(client: Any, name: str, version: Any, spec: StudySpec, champion: Champion, stores: Stores,
                    tolerance: float) -> None:
    tags = version.tags or {}
    if tags.get(TAG_VERIFY) == "passed" and float(tags.get(TAG_VERIFY_TOL, "inf")) <= tolerance:
        print(f"verification: {name} version {version.version} already passed ({tags.get('sasa.verified', '')})")
        return
    uri = f"models:/{name}/{version.version}"
    try:
        result = verify(uri, spec, champion.trial, stores.data_cache, tolerance)
    except UnusableModelError as exc:
        for key, value in {TAG_VERIFY: "failed", "sasa.verified": str(exc)[:5000]}.items():
            client.set_model_version_tag(name, str(version.version), key, value)
        raise UnusableModelError(f"verification failed: {exc}; the alias was not moved and the version is tagged "
                                 f"{TAG_VERIFY}=failed") from exc
    update = {
        TAG_VERIFY: "passed" if result.passed else "failed", TAG_VERIFY_TOL: repr(tolerance),
        "sasa.verified": result.summary, "sasa.verified.test.acc": repr(result.acc),
        "sasa.verified.test.loss": repr(result.loss), "sasa.input_mean": json.dumps(result.input_mean),
        "sasa.input_std": json.dumps(result.input_std),
    }
    for key, value in update.items():
        client.set_model_version_tag(name, str(version.version), key, value)
    if not result.passed:
        raise PromotionError(f"verification failed for {uri}: {result.summary}; the alias was not moved and the "
                             f"version is tagged {TAG_VERIFY}=failed")
    print(f"verification passed: {result.summary}")
