"""Promotion as one typed call: find the study, choose its champion, register it, verify it, move the alias.

``python -m platform.promote`` parses its arguments and calls :func:`promote`; so does ``sasa_lab.promote``.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ..records import ATTR_MODEL_URI, ATTR_POINT, ATTR_RUN, ATTR_SEED, ATTR_TEST, STUDY_SPEC
from ..spec.arguments import path_arg, require
from ..spec.names import study_target
from ..spec.study_spec import StudySpec, load_spec, parse_spec
from ..stores.connect import StoreError, open_storage_read_only
from ..stores.locations import Stores, resolve_stores
from ..stores.redaction import redact
from .champion import PromotionError, one_line, select
from .registry import alias_holder, champion_run, check_replacement, open_registry, require_sqlite_file, version_for
from .serving import curl_command, input_shape, serve_command
from .verification import default_tolerance, verify_version

DEFAULT_ALIAS = "champion"
DEFAULT_TOLERANCE = 1e-4
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")
_ALIAS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,254}")


def check_types(study_name: Any, *, alias: Any, name: Any, trial: Any, force: Any, tolerance: Any, storage: Any,
                tracking_uri: Any, runs_dir: Any) -> None:
    """Raise ``TypeError`` naming an argument of :func:`promote` of the wrong type (the Python API's callers)."""
    path_arg("study_name", study_name)
    require("alias", alias, str, "an alias string, e.g. 'champion'")
    require("name", name, str, "a registered model name string", optional=True)
    require("trial", trial, int, "a trial number (int >= 0)", optional=True)
    require("force", force, bool, "True or False")
    require("tolerance", tolerance, (int, float), "a finite number >= 0, e.g. 0.002", optional=True)
    require("storage", storage, str, "a storage URL string", optional=True)
    require("tracking_uri", tracking_uri, str, "a tracking URI string", optional=True)
    path_arg("runs_dir", runs_dir, optional=True)


def check_args(*, alias: str, name: str | None, trial: int | None, tolerance: float) -> None:
    """Raise ``ValueError`` naming a bad argument, its value and what is valid."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < math.inf:
        raise ValueError(f"--tolerance {tolerance!r}: must be a finite number ≥ 0, e.g. 0.002 (default "
                         f"{DEFAULT_TOLERANCE}; accuracies are fractions, so a tolerance ≥ 1 accepts any model)")
    if not _ALIAS_RE.fullmatch(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ValueError(f"--alias {alias!r}: use letters, digits, '_' and '-', starting with a letter or '_'; "
                         "'latest' and 'v<number>' are reserved by MLflow")
    if name is not None and not _NAME_RE.fullmatch(name):
        raise ValueError(f"--name {name!r}: use letters, digits, '_', '.' and '-', starting with a letter or "
                         "digit (at most 256 characters)")
    if trial is not None and trial < 0:
        raise ValueError(f"--trial {trial}: must be a trial number ≥ 0")


def default_model_name(study: str) -> str:
    """``sasa-<study>`` with anything outside ``[A-Za-z0-9_.-]`` replaced by ``-``."""
    return "sasa-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", study).strip("-") or "study")


def promote(
    study_name: str | Path,
    *,
    alias: str = DEFAULT_ALIAS,
    name: str | None = None,
    trial: int | None = None,
    force: bool = False,
    tolerance: float | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    runs_dir: str | Path | None = None,
) -> str:
    """Promote the champion of ``study_name`` (a study name, or a study's YAML path); returns
    ``models:/NAME@ALIAS``.

    Keyword arguments are the CLI's options (``--alias``, ``--name``, ``--trial``, ``--force``, ``--tolerance``,
    ``--storage``, ``--tracking-uri``, ``--runs-dir``; default ``runs``). Raises ``TypeError`` for an argument of
    the wrong type, ``ValueError`` for a bad value, and
    :class:`PromotionError`, ``NoChampionError``, ``StoreError``, ``SpecError`` or ``DataError`` when promotion
    cannot go on; the alias only moves after the verification passed.
    """
    check_types(study_name, alias=alias, name=name, trial=trial, force=force, tolerance=tolerance, storage=storage,
                tracking_uri=tracking_uri, runs_dir=runs_dir)
    check_args(alias=alias, name=name, trial=trial, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)
    study_name, yaml_spec = _target(str(study_name))
    stores = resolve_stores(
        cli_storage=storage, cli_tracking=tracking_uri, root=Path("runs" if runs_dir is None else runs_dir),
        spec_storage=yaml_spec.storage if yaml_spec else None, spec_tracking=yaml_spec.tracking if yaml_spec else None,
    )
    optuna_study = _load_study(stores, study_name)
    spec = _stored_spec(optuna_study, yaml_spec)
    if tracking_uri is None and yaml_spec is None and spec.tracking:
        stores = replace(stores, tracking_uri=spec.tracking)
    trials = optuna_study.get_trials(deepcopy=False)
    champion = select(
        trials, design=spec.search.design, seeds=spec.search.initial_seeds, direction=spec.objective.direction,
        two_objectives=spec.objective.second is not None, trial_number=trial,
    )
    winner = champion.trial
    metric = spec.objective.metric
    complete = len([t for t in trials if t.state.name == "COMPLETE"])
    print(f"study '{study_name}': {len(trials)} trials ({complete} complete); objective {metric} "
          f"({spec.objective.direction})")
    print(f"rule: {champion.rule}")
    print(f"winner: trial #{winner.number} · {winner.user_attrs.get(ATTR_POINT, '?')} · seed "
          f"{winner.user_attrs.get(ATTR_SEED, '?')} · {metric} = {champion.value:.6g}"
          f"{_test_text(winner)}")
    model_uri, run_id = winner.user_attrs.get(ATTR_MODEL_URI), winner.user_attrs.get(ATTR_RUN)
    if not model_uri or not run_id:
        raise PromotionError(f"trial #{winner.number} has no logged model (user attr {ATTR_MODEL_URI} is missing); "
                             "nothing to register — was it trained by python -m platform.study?")

    client = open_registry(stores)
    run = champion_run(client, run_id, stores)
    name = name or default_model_name(study_name)
    check_replacement(client, name, alias, champion, metric, spec.objective.direction, force=force)
    version, created = version_for(client, name, study_name, champion, spec, run, model_uri)
    if not created:
        print(f"trial #{winner.number} is already registered as {name} version {version.version}: no new version")
    if tolerance is None:
        tolerance, precision = default_tolerance(spec, winner)
        print(f"tolerance {tolerance:g} (the trial trained with precision {precision}; --tolerance overrides)")
    verify_version(client, name, version, spec, champion, stores, tolerance)
    holder = alias_holder(client, name, alias)
    if holder is not None and str(holder.version) == str(version.version):
        print(f"alias '{alias}' already points to {name} version {version.version}")
    else:
        client.set_registered_model_alias(name, alias, str(version.version))
        moved = f" (was version {holder.version})" if holder is not None else ""
        print(f"alias '{alias}' → {name} version {version.version}{moved}")
    uri = f"models:/{name}@{alias}"
    _print_usage(uri, stores.tracking_uri, run)
    return uri


def _target(study: str) -> tuple[str, StudySpec | None]:
    """(study name, spec from the YAML file or None when STUDY is a name)."""
    if study_target(study) == "file":  # the name rule is checked first: no filesystem access for '..'
        spec = load_spec(Path(study))
        return spec.name, spec
    return study, None


def _load_study(stores: Stores, name: str) -> optuna.Study:
    require_sqlite_file(stores.storage_url, "--storage", "Optuna storage")
    storage = open_storage_read_only(stores.storage_url)  # promotion writes to the registry only
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    except Exception as exc:
        raise StoreError(f"--storage {redact(stores.storage_url)}: cannot read studies ({one_line(exc)})") from exc
    if name not in names:
        known = ", ".join(sorted(n for n in names if ".archived-" not in n)) or "none"
        raise PromotionError(f"no study named '{name}' in {redact(stores.storage_url)} (studies there: {known})")
    return optuna.load_study(study_name=name, storage=storage)


def _stored_spec(study: optuna.Study, yaml_spec: StudySpec | None) -> StudySpec:
    raw = study.user_attrs.get(STUDY_SPEC)
    if raw is not None:
        return parse_spec(raw, source=f"spec stored with study '{study.study_name}'")
    if yaml_spec is not None:
        return yaml_spec
    raise PromotionError(f"study '{study.study_name}' has no stored spec (user attr {STUDY_SPEC}): it was not made by "
                         "python -m platform.study; pass its YAML file instead of its name")


def _test_text(trial: FrozenTrial) -> str:
    test = trial.user_attrs.get(ATTR_TEST) or {}
    return "".join(f" · {key} = {float(test[key]):.6g}" for key in ("test/acc", "test/loss") if key in test)


def _print_usage(uri: str, tracking_uri: str, run: Any) -> None:
    shape = input_shape(uri)  # the registered signature: what the server will accept
    channels, size = shape[1], shape[2]
    print(f"\nchampion: {uri}")
    print("load it in another program (`pip install mlflow torch`; the model ships its `sasa` code):")
    print("    import mlflow, mlflow.pytorch, torch")
    print(f"    mlflow.set_tracking_uri({redact(tracking_uri)!r})")
    print(f"    model = mlflow.pytorch.load_model({uri!r}, map_location='cpu')")
    print("    with torch.no_grad():  # raw images, values in [0, 1]: the normalisation is inside the model")
    print(f"        logits = model(torch.zeros(2, {channels}, {size}, {size}))  # (B, C, S, S) → (B, classes)")
    print("or serve it over HTTP (JSON in, logits out):")
    print(f"    {serve_command(uri, redact(tracking_uri) or tracking_uri)}")
    print(f"then, in another shell of the same environment, one {channels}×{size}×{size} image in [0, 1] "
          "→ {\"predictions\": [[logits]]}:")
    print(f"    {curl_command(shape)}")
