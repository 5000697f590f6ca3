"""Promotion as one typed call: find the study, choose its champion, register it, verify it, move the alias.

``python -m platform.promote`` parses its arguments, calls :func:`promote` and prints what it returns (a
:class:`Promotion`); so does ``sasa_lab.promote``, which prints nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..records import (
    ALIAS_CHAMPION,
    ARCHIVE_MARK,
    ATTR_MODEL_URI,
    ATTR_POINT,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_TEST,
    METRIC_TEST_ACC,
    METRIC_TEST_LOSS,
    MODEL_NAME_PREFIX,
    STUDY_SPEC,
    VERSION_PREFER,
)
from ..reports.confirmed import finalists_of
from ..reports.load import point_info, study_info
from ..reports.views import decisions, legend
from ..spec.arguments import path_arg, require
from ..spec.names import study_target
from ..spec.study_spec import StudySpec, load_spec, parse_spec
from ..stores.connect import StoreError, open_storage_read_only
from ..stores.locations import Stores, resolve_stores
from ..stores.redaction import redact
from .champion import Champion, PromotionError, one_line, select
from .preference import DEFAULT_PREFER, PREFER_CHEAPEST, PREFER_RULES, RULE_CONFIRMED, check_prefer, point_choice
from .registry import alias_holder, champion_run, check_replacement, open_registry, require_sqlite_file, version_for
from .serving import curl_command, input_shape, serve_command
from .verification import default_tolerance, verify_version

DEFAULT_ALIAS = ALIAS_CHAMPION
DEFAULT_TOLERANCE = 1e-4
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")
_ALIAS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,254}")


def check_types(study_name: Any, *, alias: Any, name: Any, trial: Any, force: Any, tolerance: Any, storage: Any,
                tracking_uri: Any, runs_dir: Any, prefer: Any = DEFAULT_PREFER) -> None:
    """Raise ``TypeError`` naming an argument of :func:`promote` of the wrong type (the Python API's callers)."""
    path_arg("study_name", study_name)
    require("prefer", prefer, str, f"one of {', '.join(repr(r) for r in PREFER_RULES)}")
    require("alias", alias, str, "an alias string, e.g. 'champion'")
    require("name", name, str, "a registered model name string", optional=True)
    require("trial", trial, int, "a trial number (int >= 0)", optional=True)
    require("force", force, bool, "True or False")
    require("tolerance", tolerance, (int, float), "a finite number >= 0, e.g. 0.002", optional=True)
    require("storage", storage, str, "a storage URL string", optional=True)
    require("tracking_uri", tracking_uri, str, "a tracking URI string", optional=True)
    path_arg("runs_dir", runs_dir, optional=True)


def check_args(*, alias: str, name: str | None, trial: int | None, tolerance: float,
               prefer: str = DEFAULT_PREFER) -> None:
    """Raise ``ValueError`` naming a bad argument, its value and what is valid."""
    check_prefer(prefer)
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
    return MODEL_NAME_PREFIX + (re.sub(r"[^A-Za-z0-9_.-]+", "-", study).strip("-") or "study")


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` did: the registered version, the alias, the champion's score and the verification.

    ``steps`` are the lines a person reads as promotion goes (the rule, the winner, registration, verification,
    the alias); ``usage`` shows how to load and serve the champion. ``python -m platform.promote`` prints both.
    """

    study: str
    name: str  # the registered model's name, e.g. sasa-<study>
    version: str  # the model version the alias points to
    alias: str
    uri: str  # models:/NAME@ALIAS
    model_uri: str  # models:/<id> of the trial's logged model (the version's source)
    run_id: str  # the trial's MLflow run
    trial: int  # the champion's trial number
    rule: str  # the winner rule that applied
    prefer: str  # which rule chose the champion (the version's ``sasa.prefer`` tag; :mod:`.preference`)
    metric: str  # the objective's metric, e.g. val/acc
    direction: str  # maximize or minimize
    value: float  # the champion's objective value
    test: Mapping[str, float]  # the trial's logged test metrics
    created: bool  # a new version was registered (False: the run's version was reused)
    previous_version: str | None  # the alias's former holder when it moved (None: new alias or unchanged)
    alias_moved: bool
    tolerance: float  # the verification's tolerance
    verification: str  # the verification's comparison, one line
    steps: tuple[str, ...]
    usage: tuple[str, ...]

    @property
    def lines(self) -> tuple[str, ...]:
        """Everything the command prints on success: the steps, a blank line, the usage snippet."""
        return (*self.steps, "", *self.usage)


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
    progress: Callable[[str], None] | None = None,
    prefer: str = DEFAULT_PREFER,
) -> Promotion:
    """Promote the champion of ``study_name`` (a study name, or a study's YAML path); returns the
    :class:`Promotion` (``.uri`` is ``models:/NAME@ALIAS``). Prints nothing.

    Keyword arguments are the CLI's options (``--alias``, ``--name``, ``--trial``, ``--force``, ``--tolerance``,
    ``--storage``, ``--tracking-uri``, ``--runs-dir``; default ``runs``; ``--prefer``: :mod:`.preference`);
    ``progress``, when given, receives each of the result's ``steps`` as it happens (the command passes
    ``print``, so a failure shows what came before).
    Raises ``TypeError`` for an argument of the wrong type, ``ValueError`` for a bad value, and
    :class:`PromotionError`, ``NoChampionError``, ``StoreError``, ``SpecError`` or ``DataError`` when promotion
    cannot go on; the alias only moves after the verification passed.
    """
    check_types(study_name, alias=alias, name=name, trial=trial, force=force, tolerance=tolerance, storage=storage,
                tracking_uri=tracking_uri, runs_dir=runs_dir, prefer=prefer)
    check_args(alias=alias, name=name, trial=trial, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
               prefer=prefer)
    steps: list[str] = []

    def step(line: str) -> None:
        steps.append(line)
        if progress is not None:
            progress(line)

    study_name, stores, optuna_study, spec = _open(study_name, storage, tracking_uri, runs_dir)
    trials = optuna_study.get_trials(deepcopy=False)
    champion = choose(optuna_study, spec, trial=trial, prefer=prefer)
    winner = champion.trial
    metric = spec.objective.metric
    complete = len([t for t in trials if t.state == TrialState.COMPLETE])
    step(f"study '{study_name}': {len(trials)} trials ({complete} complete); objective {metric} "
         f"({spec.objective.direction})")
    step(f"rule: {champion.rule}")
    if champion.notice:
        step(champion.notice)
    step(f"winner: trial #{winner.number} · {winner.user_attrs.get(ATTR_POINT, '?')} · seed "
         f"{winner.user_attrs.get(ATTR_SEED, '?')} · {metric} = {champion.value:.6g}{_test_text(winner)}")
    model_uri, run_id = winner.user_attrs.get(ATTR_MODEL_URI), winner.user_attrs.get(ATTR_RUN)
    if not model_uri or not run_id:
        raise PromotionError(f"trial #{winner.number} has no logged model (user attr {ATTR_MODEL_URI} is missing); "
                             "nothing to register — was it trained by python -m platform.study?")

    client = open_registry(stores)
    run = champion_run(client, run_id, stores)
    name = name or default_model_name(study_name)
    replaced = check_replacement(client, name, alias, champion, metric, spec.objective.direction, force=force)
    if replaced is not None:
        step(replaced)
    version, created = version_for(client, name, study_name, champion, spec, run, model_uri,
                                   verdict=verdict_line(optuna_study, spec, winner.user_attrs.get(ATTR_POINT)))
    number = str(version.version)
    step(f"registered {name} version {number} from {model_uri} (MLflow run {run_id})" if created else
         f"trial #{winner.number} is already registered as {name} version {number}: no new version")
    if tolerance is None:
        tolerance, precision = default_tolerance(spec, winner)
        step(f"tolerance {tolerance:g} (the trial trained with precision {precision}; --tolerance overrides)")
    summary, already = verify_version(client, name, version, spec, champion, stores, tolerance)
    step(f"verification: {name} version {number} already passed ({summary})" if already else
         f"verification passed: {summary}")
    holder = alias_holder(client, name, alias)
    moved = holder is None or str(holder.version) != number
    if moved:
        client.set_registered_model_alias(name, alias, number)
        was = f" (was version {holder.version})" if holder is not None else ""
        step(f"alias '{alias}' → {name} version {number}{was}")
    else:
        step(f"alias '{alias}' already points to {name} version {number}")
    uri = f"models:/{name}@{alias}"
    return Promotion(
        study=study_name, name=name, version=number, alias=alias, uri=uri, model_uri=str(model_uri),
        run_id=str(run_id), trial=winner.number, rule=champion.rule, prefer=str(champion.prefer), metric=metric,
        direction=spec.objective.direction, value=champion.value,
        test={str(k): float(v) for k, v in (winner.user_attrs.get(ATTR_TEST) or {}).items()}, created=created,
        previous_version=str(holder.version) if moved and holder is not None else None, alias_moved=moved,
        tolerance=float(tolerance), verification=summary, steps=tuple(steps),
        usage=usage_lines(uri, stores.tracking_uri),
    )


def choose(study: optuna.Study, spec: StudySpec, *, trial: int | None = None,
           prefer: str = DEFAULT_PREFER) -> Champion:
    """The champion of a loaded study by :func:`.champion.select` (``prefer``: :mod:`.preference`); a sampled
    search with a confirmation round passes its finalists' confirmed means (fresh seeds only), and the rule then
    ends with the round's one-line summary (the winner, its fresh seeds, its verdict against the runner-up)."""
    seeds = spec.search.initial_seeds
    seeded_grid = spec.search.design == "grid" and len(seeds) >= 2 and spec.objective.second is None
    choice = point_choice(study, spec) if seeded_grid and trial is None and prefer == PREFER_CHEAPEST else None
    table = finalists_of(study) if trial is None and spec.search.confirmation is not None else None
    rows = sorted(table.rows, key=lambda row: row.key != table.best) if table is not None else []  # its winner first
    confirmed = {row.key: float(row.confirmed.mean) for row in rows
                 if row.confirmed.n and row.confirmed.mean is not None}
    champion = select(study.get_trials(deepcopy=False), design=spec.search.design, seeds=seeds,
                      direction=spec.objective.direction, two_objectives=spec.objective.second is not None,
                      trial_number=trial, prefer=prefer, choice=choice, confirmed=confirmed or None,
                      round_planned=spec.search.confirmation is not None)
    if confirmed and table is not None and champion.prefer == RULE_CONFIRMED:
        champion = replace(champion, rule=f"{champion.rule}; {table.summary()}")
    return champion


def preview(study_name: str | Path, *, storage: str | None = None, tracking_uri: str | None = None,
            runs_dir: str | Path | None = None) -> tuple[str, ...]:
    """``--dry-run``: which trial and design point each ``--prefer`` rule would promote; registers nothing."""
    check_types(study_name, alias=DEFAULT_ALIAS, name=None, trial=None, force=False, tolerance=None,
                storage=storage, tracking_uri=tracking_uri, runs_dir=runs_dir)
    study_name, _, optuna_study, spec = _open(study_name, storage, tracking_uri, runs_dir)
    lines = [f"study '{study_name}': design {spec.search.design}, objective {spec.objective.metric} "
             f"({spec.objective.direction}); dry run: nothing is registered"]
    seeded_grid = spec.search.design == "grid" and len(spec.search.initial_seeds) >= 2 and not spec.objective.second
    for prefer in PREFER_RULES if seeded_grid else (DEFAULT_PREFER,):
        champion = choose(optuna_study, spec, prefer=prefer)
        default = " (default)" if prefer == DEFAULT_PREFER else ""
        label = f"--prefer {prefer}{default}" if seeded_grid else "any --prefer (it applies to seeded grids only)"
        lines.append(f"{label}: trial #{champion.trial.number} · "
                     f"{champion.trial.user_attrs.get(ATTR_POINT, '?')} · seed "
                     f"{champion.trial.user_attrs.get(ATTR_SEED, '?')} · {spec.objective.metric} = "
                     f"{champion.value:.6g} · {VERSION_PREFER} = {champion.prefer}")
        lines.append(f"    rule: {champion.rule}")
        if champion.notice:
            lines.append(f"    {champion.notice}")
    return tuple(lines)


def _open(study: str | Path, storage: str | None, tracking_uri: str | None,
          runs_dir: str | Path | None) -> tuple[str, Stores, optuna.Study, StudySpec]:
    """(study name, stores, the Optuna study, its stored spec) for a study name or YAML path."""
    study_name, yaml_spec = _target(str(study))
    stores = resolve_stores(
        cli_storage=storage, cli_tracking=tracking_uri, root=Path("runs" if runs_dir is None else runs_dir),
        spec_storage=yaml_spec.storage if yaml_spec else None, spec_tracking=yaml_spec.tracking if yaml_spec else None,
    )
    optuna_study = _load_study(stores, study_name)
    spec = _stored_spec(optuna_study, yaml_spec)
    if tracking_uri is None and yaml_spec is None and spec.tracking:
        stores = replace(stores, tracking_uri=spec.tracking)
    return study_name, stores, optuna_study, spec


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
        known = ", ".join(sorted(n for n in names if ARCHIVE_MARK not in n)) or "none"
        raise PromotionError(f"no study named '{name}' in {redact(stores.storage_url)} (studies there: {known})")
    return optuna.load_study(study_name=name, storage=storage)


def _stored_spec(study: optuna.Study, yaml_spec: StudySpec | None) -> StudySpec:
    raw = study.user_attrs.get(STUDY_SPEC)
    if raw is not None:
        return parse_spec(raw, source=f"spec stored with study '{study.study_name}'", stored=True)
    if yaml_spec is not None:
        return yaml_spec
    raise PromotionError(f"study '{study.study_name}' has no stored spec (user attr {STUDY_SPEC}): it was not made by "
                         "python -m platform.study; pass its YAML file instead of its name")


def _test_text(trial: FrozenTrial) -> str:
    test = trial.user_attrs.get(ATTR_TEST) or {}
    return "".join(f" · {key} = {float(test[key]):.6g}" for key in (METRIC_TEST_ACC, METRIC_TEST_LOSS) if key in test)


def usage_lines(uri: str, tracking_uri: str) -> tuple[str, ...]:
    """How to load the promoted model in another program and serve it over HTTP (from its registered signature)."""
    shape = input_shape(uri)  # the registered signature: what the server will accept
    channels, size = shape[1], shape[2]
    return (
        f"champion: {uri}",
        "load it in another program (`pip install mlflow torch`; the model ships its `sasa` code):",
        "    import mlflow, mlflow.pytorch, torch",
        f"    mlflow.set_tracking_uri({redact(tracking_uri)!r})",
        f"    model = mlflow.pytorch.load_model({uri!r}, map_location='cpu')",
        "    with torch.no_grad():  # raw images, values in [0, 1]: the normalisation is inside the model",
        f"        logits = model(torch.zeros(2, {channels}, {size}, {size}))  # (B, C, S, S) → (B, classes)",
        "or serve it over HTTP (JSON in, logits out):",
        f"    {serve_command(uri, redact(tracking_uri) or tracking_uri)}",
        f"then, in another shell of the same environment, one {channels}×{size}×{size} image in [0, 1] "
        "→ {\"predictions\": [[logits]]}:",
        f"    {curl_command(shape)}",
    )


def verdict_line(study: optuna.Study, spec: StudySpec, point: str | None) -> str | None:
    """The champion's design point against its reference, with the verdicts' legend (the registry version's
    description); None without ``search.effect`` (no verdicts) or when the point has none."""
    effect = spec.search.effect
    if effect is None or point is None:
        return None
    info = study_info(study, spec.resolved_dict())
    found = decisions.study_verdicts(point_info(study, info), info)
    decided = found.get(point)
    if decided is None and point not in {v.reference for v in found.values()}:
        return None
    what = "the reference" if decided is None else decided.verdict + (
        "" if decided.delta is None else f" (Δ {decided.delta:+.4f} vs {decided.reference})")
    return f"Its design point against the reference: {what}. " + legend.verdict_legend(
        effect=effect, metric=spec.objective.metric)
