"""Verification before an alias moves: re-evaluate the registered model on the study's test split (CPU, eval mode,
float32, the SASA layers on the torch backend whatever backend the trial trained with) and compare with the trial's
logged ``test/acc`` (absolute) and ``test/loss`` (relative) within a tolerance; the result is written on the model
version as ``sasa.verification*`` tags. Models logged by the study runner take raw images in [0, 1] (normalisation
inside, ``sasa.models.normalized``): the test split, cached normalised, is mapped back to [0, 1] for them. The
default tolerance follows the trial's recorded training precision (:data:`TOLERANCE_BY_PRECISION`): the logged
numbers of a mixed-precision trial were computed in float16/bfloat16 and the float32 re-evaluation can flip a few
borderline predictions.
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

import sasa

from ..data.datamodule import build_datamodule
from ..records import (
    ATTR_SEED,
    ATTR_TEST,
    METRIC_TEST_ACC,
    METRIC_TEST_LOSS,
    VERIFY_FAILED,
    VERIFY_PASSED,
    VERSION_INPUT_MEAN,
    VERSION_INPUT_STD,
    VERSION_VERIFIED,
    VERSION_VERIFIED_ACC,
    VERSION_VERIFIED_LOSS,
    VERSION_VERIFY,
    VERSION_VERIFY_TOL,
)
from ..search import point_from_optuna, resolve
from ..spec.base import reading_stored_spec
from ..spec.study_spec import StudySpec
from ..stores.locations import Stores
from .champion import Champion, PromotionError, UnusableModelError, one_line

# Default tolerance by the trial's ``train.precision``: float32/float64 trials repeat their numbers up to rounding
# (1e-4 is below one test example under 10,000 images); half-precision trials get a stated, looser bound
# (bfloat16 keeps 8 bits of mantissa, float16 11).
TOLERANCE_BY_PRECISION = {"32-true": 1e-4, "64-true": 1e-4, "16-mixed": 2e-3, "bf16-mixed": 5e-3}


def default_tolerance(spec: StudySpec, trial: FrozenTrial) -> tuple[float, str]:
    """(tolerance, precision) for ``trial``: the precision its design point trained with, looked up above."""
    with reading_stored_spec():  # the stored spec's model: its builder's module need not import here
        _, train = resolve(spec, point_from_optuna(spec, trial.params))
    return TOLERANCE_BY_PRECISION.get(train.precision, max(TOLERANCE_BY_PRECISION.values())), train.precision


def takes_raw_images(model: Any) -> bool:
    """Was the model logged with normalisation inside (``sasa.models.normalized.Normalized``)?"""
    return type(model).__name__ == "Normalized" and hasattr(model, "mean") and hasattr(model, "std")


def _raw(loader: Any, mean: list[float], std: list[float]) -> Any:
    """The (normalised) test batches mapped back to raw [0, 1] images."""
    m = torch.tensor(mean).view(1, -1, 1, 1)  # (1, C, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    for images, labels in loader:
        yield images * s + m, labels


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
    mode they were exported in (``study.tracking.log_backbone`` exports in eval mode) and refuse ``eval()``.
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
    if METRIC_TEST_ACC not in logged or METRIC_TEST_LOSS not in logged:
        raise PromotionError(f"trial #{trial.number} has no logged {METRIC_TEST_ACC} and {METRIC_TEST_LOSS} to "
                             "verify against")
    with reading_stored_spec():  # the stored spec's model: its builder's module need not import here
        _, train = resolve(spec, point_from_optuna(spec, trial.params))
    try:
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except Exception as exc:
        raise UnusableModelError(f"cannot load {model_uri}: {one_line(exc)}") from exc
    sasa.set_backend(model, "torch")  # the CPU re-evaluation runs the torch kernels, whatever the model trained on
    datamodule = build_datamodule(spec.data, batch_size=train.batch_size, seed=int(trial.user_attrs.get(ATTR_SEED, 0)),
                                  cache_dir=cache_dir, num_workers=0)
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    if takes_raw_images(model):
        loader = _raw(loader, datamodule.mean, datamodule.std)
    try:
        acc, loss, count = evaluate(model, loader, label_smoothing=train.label_smoothing)
    except PromotionError:
        raise
    except Exception as exc:  # e.g. an exported graph that only accepts its example's batch size
        raise UnusableModelError(f"{model_uri} fails on test batches of {train.batch_size} images: "
                                 f"{type(exc).__name__}: {one_line(exc)}") from exc
    logged_acc, logged_loss = float(logged[METRIC_TEST_ACC]), float(logged[METRIC_TEST_LOSS])
    acc_ok = abs(acc - logged_acc) <= tolerance
    loss_ok = abs(loss - logged_loss) <= tolerance * max(1.0, abs(logged_loss))
    summary = (f"{METRIC_TEST_ACC} {acc:.6f} vs logged {logged_acc:.6f} (|Δ| {abs(acc - logged_acc):.2e}), "
               f"{METRIC_TEST_LOSS} {loss:.6f} vs logged {logged_loss:.6f} (|Δ| {abs(loss - logged_loss):.2e}) "
               f"on {count} test images, tolerance {tolerance:g}")
    return Verification(acc_ok and loss_ok, acc, loss, summary, datamodule.mean, datamodule.std)


def verify_version(client: Any, name: str, version: Any, spec: StudySpec, champion: Champion, stores: Stores,
                    tolerance: float) -> tuple[str, bool]:
    """Verify ``version`` unless it already passed at this tolerance or a tighter one, and tag it with the outcome.

    Returns (the comparison in one line, whether an earlier verification was reused); raises
    :class:`PromotionError` when it fails (the version is then tagged as failed).
    """
    tags = version.tags or {}
    if tags.get(VERSION_VERIFY) == VERIFY_PASSED and float(tags.get(VERSION_VERIFY_TOL, "inf")) <= tolerance:
        return tags.get(VERSION_VERIFIED, ""), True
    uri = f"models:/{name}/{version.version}"
    try:
        result = verify(uri, spec, champion.trial, stores.data_cache, tolerance)
    except UnusableModelError as exc:
        for key, value in {VERSION_VERIFY: VERIFY_FAILED, VERSION_VERIFIED: str(exc)[:5000]}.items():
            client.set_model_version_tag(name, str(version.version), key, value)
        raise UnusableModelError(f"verification failed: {exc}; the alias was not moved and the version is tagged "
                                 f"{VERSION_VERIFY}={VERIFY_FAILED}") from exc
    update = {
        VERSION_VERIFY: VERIFY_PASSED if result.passed else VERIFY_FAILED, VERSION_VERIFY_TOL: repr(tolerance),
        VERSION_VERIFIED: result.summary, VERSION_VERIFIED_ACC: repr(result.acc),
        VERSION_VERIFIED_LOSS: repr(result.loss), VERSION_INPUT_MEAN: json.dumps(result.input_mean),
        VERSION_INPUT_STD: json.dumps(result.input_std),
    }
    for key, value in update.items():
        client.set_model_version_tag(name, str(version.version), key, value)
    if not result.passed:
        raise PromotionError(f"verification failed for {uri}: {result.summary}; the alias was not moved and the "
                             f"version is tagged {VERSION_VERIFY}={VERIFY_FAILED}")
    return result.summary, False
