"""``python -m platform.promote STUDY``: put a study's champion model in the MLflow Model Registry under an alias.

A sasa-lab study compares Stand-Alone Self-Attention designs (Ramachandran et al., NeurIPS 2019: window size,
positional encoding, heads, stem, attention groups) over seeds; promotion turns its winner into a model any
program can load with ``mlflow.pytorch.load_model("models:/NAME@champion")``. Steps:

1. find the study (a YAML path or a study name) in the Optuna storage; use the spec stored with it (what the
   trials actually ran, ``--set`` overrides included);
2. choose the champion trial by the rule of :mod:`platform._champion` (printed), or ``--trial N``;
3. refuse to move the alias away from a champion with a better objective value unless ``--force``;
4. register the trial's logged model (``models:/<model_id>``) as a new version of NAME (``sasa-<study>``), with a
   description and ``sasa.*`` tags — unless a version from the same MLflow run exists: then it is reused;
5. verify *before* moving the alias: load ``models:/NAME/<version>``, evaluate it on the study's test split (CPU,
   eval mode, float32) and compare with the trial's logged ``test/acc`` (absolute) and ``test/loss`` (relative)
   within ``--tolerance``. On a mismatch the version is tagged ``sasa.verification=failed``, the alias stays
   where it was and the exit code is 2;
6. set the alias and print ``models:/NAME@ALIAS`` with a load snippet.

Tolerance (default 1e-4): the check repeats the computation that produced the logged numbers — same weights, same
cached and seeded test split, batch norm in eval mode — so on the CPU it can only differ by float32 rounding
(about 1e-7). 1e-4 is below one test example for test sets under 10,000 images, so it accepts the same
predictions only. Models trained on a GPU or in mixed precision can flip a few borderline predictions: give
such studies e.g. ``--tolerance 0.002``.

Exit codes: 0 promoted (or already the champion), 2 bad input, no such study, nothing to promote, unreachable
store, a better champion without ``--force``, or failed verification — always one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch
import torch.nn.functional as F
from optuna.trial import FrozenTrial

from platform._champion import (
    TAG_METRIC,
    TAG_VALUE,
    TAG_VERIFY,
    Champion,
    NoChampionError,
    description,
    is_better,
    select,
    version_tags,
)
from platform.data import DataError, build_datamodule
from platform.errors import SpecError
from platform.search_space import point_from_optuna, resolve
from platform.spec import StudySpec, load_spec, parse_spec
from platform.stores import StoreError, Stores, check_tracking, open_storage, resolve_stores
from platform.tracking import redact

EXIT_USAGE = 2
DEFAULT_ALIAS = "champion"
DEFAULT_TOLERANCE = 1e-4
TAG_VERIFY_TOL = "sasa.verification_tolerance"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")
_ALIAS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,254}")


class PromotionError(Exception):
    """Promotion cannot go on; the message is the one line printed on stderr (exit code 2)."""


class UnusableModelError(PromotionError):
    """The registered version cannot be loaded or run on the test split (verification fails)."""


@dataclass(frozen=True)
class Verification:
    passed: bool
    acc: float
    loss: float
    summary: str  # both comparisons in one line
    input_mean: list[float]  # the normalisation the model expects (training split statistics)
    input_std: list[float]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m platform.promote",
        description="Register a study's champion model in the MLflow Model Registry and point an alias at it, "
        "after re-evaluating it on the test split. Winner: for a grid with ≥ 2 seeds the best design point by "
        "mean objective over its complete seeds, then its best seed; otherwise the best complete trial (two "
        "objectives: the best primary objective on the Pareto front).",
        epilog="Exit codes: 0 promoted, 2 bad input / nothing to promote / unreachable store / better champion "
        "without --force / failed verification.",
    )
    parser.add_argument("study", help="study YAML file or study name")
    parser.add_argument("--alias", default=DEFAULT_ALIAS, help="registry alias to move (default: champion)")
    parser.add_argument("--name", help="registered model name (default: sasa-<study>)")
    parser.add_argument("--trial", type=int, metavar="N", help="promote trial N instead of the rule's winner")
    parser.add_argument("--force", action="store_true",
                        help="replace a current alias holder whose objective value is better")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="T",
                        help="largest accepted |re-evaluated − logged| test accuracy (absolute) and test loss "
                        "(relative) (default: 1e-4; e.g. 0.002 for GPU or mixed-precision training)")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: sqlite:///runs/optuna.db)")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking/registry URI "
                        "(default: sqlite:///runs/mlflow.db)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="folder of the default stores and the prepared-data cache (default: ./runs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("mlflow", "alembic", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        promote(args)
    except (PromotionError, NoChampionError, StoreError, SpecError, DataError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # registry / database errors from mlflow or sqlalchemy: still one line
        print(f"error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` naming a bad argument, its value and what is valid."""
    if not args.tolerance >= 0:  # also rejects NaN
        raise ValueError(f"--tolerance {args.tolerance}: must be a number ≥ 0 (default {DEFAULT_TOLERANCE})")
    if not _ALIAS_RE.fullmatch(args.alias) or args.alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", args.alias):
        raise ValueError(f"--alias {args.alias!r}: use letters, digits, '_' and '-', starting with a letter or '_'; "
                         "'latest' and 'v<number>' are reserved by MLflow")
    if args.name is not None and not _NAME_RE.fullmatch(args.name):
        raise ValueError(f"--name {args.name!r}: use letters, digits, '_', '.' and '-', starting with a letter or "
                         "digit (at most 256 characters)")
    if args.trial is not None and args.trial < 0:
        raise ValueError(f"--trial {args.trial}: must be a trial number ≥ 0")


def default_model_name(study: str) -> str:
    """``sasa-<study>`` with anything outside ``[A-Za-z0-9_.-]`` replaced by ``-``."""
    return "sasa-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", study).strip("-") or "study")


def promote(args: argparse.Namespace) -> str:
    """Run the whole promotion; returns ``models:/NAME@ALIAS``. Raises on any failure (see :func:`main`)."""
    check_args(args)
    study_name, yaml_spec = _target(args.study)
    stores = resolve_stores(
        cli_storage=args.storage, cli_tracking=args.tracking_uri, root=args.runs_dir,
        spec_storage=yaml_spec.storage if yaml_spec else None, spec_tracking=yaml_spec.tracking if yaml_spec else None,
    )
    study = _load_study(stores, study_name)
    spec = _stored_spec(study, yaml_spec)
    if args.tracking_uri is None and yaml_spec is None and spec.tracking:
        stores = replace(stores, tracking_uri=spec.tracking)
    trials = study.get_trials(deepcopy=False)
    champion = select(
        trials, design=spec.search.design, seeds=spec.search.seeds, direction=spec.objective.direction,
        two_objectives=spec.objective.second is not None, trial_number=args.trial,
    )
    trial = champion.trial
    metric = spec.objective.metric
    complete = len([t for t in trials if t.state.name == "COMPLETE"])
    print(f"study '{study_name}': {len(trials)} trials ({complete} complete); objective {metric} "
          f"({spec.objective.direction})")
    print(f"rule: {champion.rule}")
    print(f"winner: trial #{trial.number} · {trial.user_attrs.get('design_point', '?')} · seed "
          f"{trial.user_attrs.get('seed', '?')} · {metric} = {champion.value:.6g}"
          f"{_test_text(trial)}")
    model_uri, run_id = trial.user_attrs.get("model_uri"), trial.user_attrs.get("mlflow_run_id")
    if not model_uri or not run_id:
        raise PromotionError(f"trial #{trial.number} has no logged model (user attr model_uri is missing); "
                             "nothing to register — was it trained by python -m platform.study?")

    client = _registry(stores)
    run = _run(client, run_id, stores)
    name = args.name or default_model_name(study_name)
    _check_replacement(client, name, args.alias, champion, metric, spec.objective.direction, force=args.force)
    version, created = _version_for(client, name, study_name, champion, spec, run, model_uri)
    if not created:
        print(f"trial #{trial.number} is already registered as {name} version {version.version}: no new version")
    _verify_version(client, name, version, spec, champion, stores, args.tolerance)
    holder = _alias_holder(client, name, args.alias)
    if holder is not None and str(holder.version) == str(version.version):
        print(f"alias '{args.alias}' already points to {name} version {version.version}")
    else:
        client.set_registered_model_alias(name, args.alias, str(version.version))
        moved = f" (was version {holder.version})" if holder is not None else ""
        print(f"alias '{args.alias}' → {name} version {version.version}{moved}")
    uri = f"models:/{name}@{args.alias}"
    _print_usage(uri, stores.tracking_uri, run)
    return uri


# --- finding the study -----------------------------------------------------------------------------------


def _target(study: str) -> tuple[str, StudySpec | None]:
    """(study name, spec from the YAML file or None when STUDY is a name)."""
    path = Path(study)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        spec = load_spec(path)
        return spec.name, spec
    if not _NAME_RE.fullmatch(study):
        raise ValueError(f"STUDY {study!r} is neither a YAML file nor a study name (letters, digits, '_', '.', '-')")
    return study, None


def _require_sqlite_file(uri: str, option: str, what: str) -> None:
    """A missing SQLite file means the study never ran there; opening it would create an empty database."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise StoreError(f"{option} {redact(uri)}: no {what} there (run the study first, or pass the "
                         "--storage/--tracking-uri/--runs-dir it used)")


def _load_study(stores: Stores, name: str) -> optuna.Study:
    _require_sqlite_file(stores.storage_url, "--storage", "Optuna storage")
    storage = open_storage(stores.storage_url)
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    except Exception as exc:
        raise StoreError(f"--storage {redact(stores.storage_url)}: cannot read studies ({_one_line(exc)})") from exc
    if name not in names:
        known = ", ".join(sorted(n for n in names if ".archived-" not in n)) or "none"
        raise PromotionError(f"no study named '{name}' in {redact(stores.storage_url)} (studies there: {known})")
    return optuna.load_study(study_name=name, storage=storage)


def _stored_spec(study: optuna.Study, yaml_spec: StudySpec | None) -> StudySpec:
    raw = study.user_attrs.get("sasa.spec")
    if raw is not None:
        return parse_spec(raw, source=f"spec stored with study '{study.study_name}'")
    if yaml_spec is not None:
        return yaml_spec
    raise PromotionError(f"study '{study.study_name}' has no stored spec (user attr sasa.spec): it was not made by "
                         "python -m platform.study; pass its YAML file instead of its name")


# --- the registry ----------------------------------------------------------------------------------------


def _registry(stores: Stores) -> Any:
    import mlflow
    from mlflow import MlflowClient

    _require_sqlite_file(stores.tracking_uri, "--tracking-uri", "MLflow tracking database")
    check_tracking(stores.tracking_uri)
    mlflow.set_tracking_uri(stores.tracking_uri)
    mlflow.set_registry_uri(stores.tracking_uri)
    return MlflowClient(tracking_uri=stores.tracking_uri, registry_uri=stores.tracking_uri)


def _run(client: Any, run_id: str, stores: Stores) -> Any:
    try:
        return client.get_run(run_id)
    except Exception as exc:
        raise PromotionError(f"the trial's MLflow run {run_id} is not in {redact(stores.tracking_uri)}; pass the "
                             "--tracking-uri the study used") from exc


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _alias_holder(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _missing(exc) or "not found" in str(exc).lower():
            return None
        raise


def _check_replacement(client: Any, name: str, alias: str, champion: Champion, metric: str, direction: str,
                       *, force: bool) -> None:
    holder = _alias_holder(client, name, alias)
    if holder is None or holder.run_id == champion.trial.user_attrs.get("mlflow_run_id"):
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


def _version_for(client: Any, name: str, study: str, champion: Champion, spec: StudySpec, run: Any,
                 model_uri: str) -> tuple[Any, bool]:
    """The model version for the champion's run (reused if it exists) and whether it was created now."""
    import mlflow
    from mlflow.exceptions import MlflowException

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
        client.set_registered_model_tag(name, "sasa.study", study)
    client.update_model_version(name, str(version.version), description=description(study, champion, spec, run))
    print(f"registered {name} version {version.version} from {model_uri} (MLflow run {run_id})")
    return client.get_model_version(name, str(version.version)), True


# --- verification ----------------------------------------------------------------------------------------


def evaluate(model: torch.nn.Module, loader: Any, *, label_smoothing: float = 0.0) -> tuple[float, float, int]:
    """Top-1 accuracy, mean cross-entropy and example count of ``model`` over ``loader`` (eval mode, no grad).

    MLflow 3 logs PyTorch models as ``torch.export`` programs by default: loaded, they are graphs fixed in the
    mode they were exported in (``platform.tracking.log_backbone`` exports in eval mode) and refuse ``eval()``.
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
    import mlflow.pytorch

    logged = trial.user_attrs.get("test") or {}
    if "test/acc" not in logged or "test/loss" not in logged:
        raise PromotionError(f"trial #{trial.number} has no logged test/acc and test/loss to verify against")
    _, train = resolve(spec, point_from_optuna(spec, trial.params))
    try:
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except Exception as exc:
        raise UnusableModelError(f"cannot load {model_uri}: {_one_line(exc)}") from exc
    datamodule = build_datamodule(spec.data, batch_size=train.batch_size, seed=int(trial.user_attrs.get("seed", 0)),
                                  cache_dir=cache_dir, num_workers=0)
    datamodule.setup("test")
    try:
        acc, loss, count = evaluate(model, datamodule.test_dataloader(), label_smoothing=train.label_smoothing)
    except PromotionError:
        raise
    except Exception as exc:  # e.g. an exported graph that only accepts its example's batch size
        raise UnusableModelError(f"{model_uri} fails on test batches of {train.batch_size} images: "
                                 f"{type(exc).__name__}: {_one_line(exc)}") from exc
    logged_acc, logged_loss = float(logged["test/acc"]), float(logged["test/loss"])
    acc_ok = abs(acc - logged_acc) <= tolerance
    loss_ok = abs(loss - logged_loss) <= tolerance * max(1.0, abs(logged_loss))
    summary = (f"test/acc {acc:.6f} vs logged {logged_acc:.6f} (|Δ| {abs(acc - logged_acc):.2e}), test/loss "
               f"{loss:.6f} vs logged {logged_loss:.6f} (|Δ| {abs(loss - logged_loss):.2e}) on {count} test images, "
               f"tolerance {tolerance:g}")
    return Verification(acc_ok and loss_ok, acc, loss, summary, datamodule.mean, datamodule.std)


def _verify_version(client: Any, name: str, version: Any, spec: StudySpec, champion: Champion, stores: Stores,
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


# --- output ----------------------------------------------------------------------------------------------


def _test_text(trial: FrozenTrial) -> str:
    test = trial.user_attrs.get("test") or {}
    return "".join(f" · {key} = {float(test[key]):.6g}" for key in ("test/acc", "test/loss") if key in test)


def _print_usage(uri: str, tracking_uri: str, run: Any) -> None:
    channels = run.data.params.get("data.channels", "C")
    size = run.data.params.get("data.image_size", "S")
    print(f"\nchampion: {uri}")
    print("load it in another program (`pip install mlflow torch`; the model ships its `sasa` code):")
    print("    import mlflow, mlflow.pytorch, torch")
    print(f"    mlflow.set_tracking_uri({redact(tracking_uri)!r})")
    print(f"    model = mlflow.pytorch.load_model({uri!r}, map_location='cpu')")
    print("    with torch.no_grad():  # images normalised with the version's tags sasa.input_mean / sasa.input_std")
    print(f"        logits = model(torch.zeros(2, {channels}, {size}, {size}))  # (B, C, S, S) → (B, classes)")


def _one_line(exc: BaseException) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())[:1000]


if __name__ == "__main__":
    sys.exit(main())
