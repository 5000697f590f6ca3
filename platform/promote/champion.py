"""Which trial of a study is the champion: the winner rule of ``python -m platform.promote``.

Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) compares design points (window size k, positional
encoding, heads, stem, attention groups) by their accuracy; a sasa-lab study measures each point on one or more
seeds. Promotion turns such a study into one model, with a rule that depends on the study's design:

- **seeded ablation** (``grid`` design with ≥ 2 seeds): a design point by ``prefer`` (:mod:`.preference`):
  ``mean``, the best by the *mean* objective over its COMPLETE seeds (ties: more complete seeds, then the earlier
  point); ``cheapest`` (default), the cheapest point shown equivalent or better than that one, else that one.
  Then that point's best seed (ties: the earlier trial). Picking the single best trial of a grid would reward
  seed noise, not the design.
- **search** (``tpe``/``random``/``cmaes``, or any design with one seed): the best COMPLETE trial on the
  objective (ties: the earlier trial); a sampled search gets a one-line ``notice`` that this winner is selected,
  not confirmed. With ``confirmed`` (a confirmation round's per-point means) the best confirmed point's best seed.
- **two objectives** (``nsga2``: metric + params/flops/latency, always minimised): among the Pareto front of the
  COMPLETE trials, the best on the primary objective; ties on the primary go to the smaller second objective
  (the others are dominated), then the earlier trial.

Only COMPLETE trials count: a PRUNED or FAILED trial has no test metrics and no logged model. Trials the runner
marked ``spurious`` (an empty grid queue) are ignored. ``select(..., trial_number=N)`` bypasses the rule.
:func:`version_tags` and :func:`description` say in the registry which trial won and why.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from ..records import (
    ATTR_FLOPS,
    ATTR_MODEL_CONFIG,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_SEED,
    ATTR_SPURIOUS,
    ATTR_TEST,
    TAG_COMMIT,
    TAG_POINT,
    TAG_SEED,
    TAG_STUDY,
    TAG_TRIAL,
    VERIFY_PENDING,
    VERSION_DATA_NAME,
    VERSION_DATA_SOURCE,
    VERSION_DESIGN_PREFIX,
    VERSION_DIRECTION,
    VERSION_FLOPS,
    VERSION_METRIC,
    VERSION_MODEL_CONFIG,
    VERSION_MODEL_URI,
    VERSION_PARAMS,
    VERSION_POINT_MEAN,
    VERSION_POINT_SEEDS,
    VERSION_PREFER,
    VERSION_RULE,
    VERSION_RUN,
    VERSION_SECOND_PREFIX,
    VERSION_VALUE,
    VERSION_VERIFY,
    version_metric_tag,
)
from ..search import point_from_optuna
from ..spec.study_spec import StudySpec
from ..stores.redaction import redact
from .preference import (
    DEFAULT_PREFER,
    PREFER_CHEAPEST,
    PREFER_MEAN,
    RULE_BEST_TRIAL,
    RULE_CONFIRMED,
    RULE_EXPLICIT,
    RULE_PARETO,
    PointChoice,
    check_prefer,
    confirmed_point,
    is_sampled,
    search_notice,
)


class PromotionError(Exception):
    """Promotion cannot go on; the message is the one line printed on stderr (exit code 2)."""


class UnusableModelError(PromotionError):
    """The registered version cannot be loaded or run on the test split (verification fails)."""


class NoChampionError(Exception):
    """No trial qualifies (no COMPLETE trial, or ``--trial N`` names an unusable one)."""


@dataclass(frozen=True)
class Champion:
    """The chosen trial and why it was chosen."""

    trial: FrozenTrial
    rule: str  # the rule that applied, as printed and stored in the model version's tags
    point_mean: float | None = None  # ablation: mean objective of the winning point over its complete seeds
    point_seeds: int | None = None  # ablation: how many complete seeds that mean covers
    prefer: str | None = None  # which rule chose it (:mod:`.preference`), stored as the ``sasa.prefer`` tag
    notice: str | None = None  # a search without a confirmation round: the one line saying so

    @property
    def value(self) -> float:
        return float(self.trial.values[0])


def is_better(a: float, b: float, direction: str) -> bool:
    """Whether objective value ``a`` is strictly better than ``b`` for ``direction`` (maximize/minimize)."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    return a > b if direction == "maximize" else a < b


def candidates(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE, non-spurious trials with an objective value, in trial order."""
    usable = [
        t for t in trials
        if t.state == TrialState.COMPLETE and t.values and not t.user_attrs.get(ATTR_SPURIOUS)
    ]
    return sorted(usable, key=lambda t: t.number)


def select(
    trials: Sequence[FrozenTrial],
    *,
    design: str,
    seeds: Sequence[int],
    direction: str,
    two_objectives: bool = False,
    trial_number: int | None = None,
    prefer: str = DEFAULT_PREFER,
    choice: PointChoice | None = None,
    confirmed: Mapping[str, float] | None = None,
    round_planned: bool = False,
) -> Champion:
    """The champion among ``trials`` by the module's rule (or trial ``trial_number`` when given). ``prefer``: the
    seeded ablation's rule; ``choice``: the cheapest rule's point (:func:`.preference.point_choice`; without it
    ``cheapest`` keeps the best by mean and says so). ``confirmed``: a sampled search's confirmed means per design
    point (:func:`.preference.confirmed_point`), None without a confirmation round or before it has a value;
    ``round_planned``: the spec has a confirmation round (its notice then says the round has no value yet)."""
    check_prefer(prefer)
    pool = candidates(trials)
    if trial_number is not None:
        return _explicit(trials, pool, trial_number)
    if not pool:
        states = sorted({t.state.name for t in trials}) or ["none"]
        raise NoChampionError(f"no COMPLETE trial to promote (trial states: {', '.join(states)})")
    notice = None if confirmed or not is_sampled(design) else search_notice(design, len(pool), round_planned)
    if two_objectives:
        return replace(_pareto_best(pool, direction), notice=notice)
    if confirmed:
        return _confirmed_best(pool, confirmed, direction)
    if design == "grid" and len(seeds) >= 2:
        return _ablation_best(pool, direction, prefer, choice)
    best = _best_trial(pool, direction)
    selected = " — selected, not confirmed: biased upward" if notice else ""
    return Champion(best, rule=f"best COMPLETE trial by the objective ({direction}); ties: earlier trial{selected}",
                    prefer=RULE_BEST_TRIAL, notice=notice)


def _key(direction: str):  # sort key: better values first
    sign = -1.0 if direction == "maximize" else 1.0
    return lambda t: (sign * float(t.values[0]), t.number)


def _best_trial(pool: Sequence[FrozenTrial], direction: str) -> FrozenTrial:
    return min(pool, key=_key(direction))


def _groups(pool: Sequence[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    groups: dict[str, list[FrozenTrial]] = {}
    for trial in pool:
        groups.setdefault(str(trial.user_attrs.get(ATTR_POINT, f"trial {trial.number}")), []).append(trial)
    return groups


def _ablation_best(pool: Sequence[FrozenTrial], direction: str, prefer: str = PREFER_MEAN,
                   choice: PointChoice | None = None) -> Champion:
    groups = _groups(pool)
    sign = -1.0 if direction == "maximize" else 1.0

    def point_key(item: tuple[str, list[FrozenTrial]]) -> tuple[float, int, int]:
        _, members = item
        mean = statistics.fmean(float(t.values[0]) for t in members)
        return sign * mean, -len(members), min(t.number for t in members)

    point, members = min(groups.items(), key=point_key)
    head = (f"seeded ablation, --prefer mean: best design point by mean objective ({direction}) over its COMPLETE "
            "seeds (ties: more seeds, earlier point)")
    if prefer == PREFER_CHEAPEST:
        why = "the cheaper design points were not compared" if choice is None else choice.why
        if choice is not None and choice.cheapest in groups and choice.cheapest != choice.best:
            point, members = choice.cheapest, groups[choice.cheapest]
            head = f"seeded ablation, --prefer cheapest: {why}"
        else:
            head = (f"seeded ablation, --prefer cheapest: {why}, so the best design point by mean objective "
                    f"({direction}) over its COMPLETE seeds (ties: more seeds, earlier point)")
    mean = statistics.fmean(float(t.values[0]) for t in members)
    rule = f"{head}, then its best seed — point {point}, mean {mean:.6g} over {len(members)} seed(s)"
    return Champion(_best_trial(members, direction), rule=rule, point_mean=mean, point_seeds=len(members),
                    prefer=prefer)


def _confirmed_best(pool: Sequence[FrozenTrial], confirmed: Mapping[str, float], direction: str) -> Champion:
    """A search with a confirmation round: the finalist with the best confirmed mean, then its best seed."""
    groups = _groups(pool)
    known = {k: v for k, v in confirmed.items() if k in groups}
    if not known:
        raise NoChampionError(f"no confirmed design point has a COMPLETE trial (confirmed: {', '.join(confirmed)})")
    point = confirmed_point(known, direction)
    members = groups[point]
    rule = (f"search with a confirmation round: the finalist with the best confirmed mean ({direction}), then its "
            f"best seed — point {point}, confirmed mean {known[point]:.6g}")
    return Champion(_best_trial(members, direction), rule=rule, point_mean=float(known[point]),
                    point_seeds=len(members), prefer=RULE_CONFIRMED)


def pareto_front(pool: Sequence[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """Trials not dominated on (primary objective in ``direction``, second objective minimised)."""
    sign = -1.0 if direction == "maximize" else 1.0

    def costs(t: FrozenTrial) -> tuple[float, float]:
        return sign * float(t.values[0]), float(t.values[1])

    front = []
    for trial in pool:
        a = costs(trial)
        dominated = any(
            b[0] <= a[0] and b[1] <= a[1] and b != a for b in (costs(other) for other in pool if other is not trial)
        )
        if not dominated:
            front.append(trial)
    return front


def _pareto_best(pool: Sequence[FrozenTrial], direction: str) -> Champion:
    usable = [t for t in pool if len(t.values) >= 2]
    if not usable:
        raise NoChampionError("the study has two objectives but no COMPLETE trial carries both values")
    front = pareto_front(usable, direction)
    sign = -1.0 if direction == "maximize" else 1.0
    best = min(front, key=lambda t: (sign * float(t.values[0]), float(t.values[1]), t.number))
    rule = (f"two objectives: best primary objective ({direction}) among the Pareto front of {len(front)} "
            "COMPLETE trial(s); ties: smaller second objective, then earlier trial")
    return Champion(best, rule=rule, prefer=RULE_PARETO)


def _explicit(trials: Sequence[FrozenTrial], pool: Sequence[FrozenTrial], number: int) -> Champion:
    chosen = next((t for t in pool if t.number == number), None)
    if chosen is None:
        known = next((t for t in trials if t.number == number), None)
        if known is None:
            raise NoChampionError(f"--trial {number}: no such trial; the study has trials 0–{len(trials) - 1}"
                                  if trials else f"--trial {number}: the study has no trials")
        raise NoChampionError(f"--trial {number}: the trial is {known.state.name}, not COMPLETE; only complete "
                              f"trials can be promoted (complete: {', '.join(str(t.number) for t in pool) or 'none'})")
    return Champion(chosen, rule=f"trial {number} chosen explicitly with --trial (the winner rule was not applied)",
                    prefer=RULE_EXPLICIT)


# --- how a promoted champion is described in the registry -------------------------------------------------


def version_tags(study: str, champion: Champion, spec: StudySpec, run: Any, model_uri: str) -> dict[str, str]:
    """``sasa.*`` tags of the champion's model version (``run``: its MLflow run, for the git commit)."""
    trial, attrs = champion.trial, champion.trial.user_attrs
    data = spec.data
    tags: dict[str, Any] = {
        TAG_STUDY: study, TAG_TRIAL: trial.number, VERSION_RUN: run.info.run_id, VERSION_MODEL_URI: model_uri,
        TAG_POINT: attrs.get(ATTR_POINT), TAG_SEED: attrs.get(ATTR_SEED),
        VERSION_METRIC: spec.objective.metric, VERSION_VALUE: repr(champion.value),
        VERSION_DIRECTION: spec.objective.direction, VERSION_RULE: champion.rule, VERSION_PREFER: champion.prefer,
        VERSION_PARAMS: attrs.get(ATTR_PARAMS), VERSION_FLOPS: attrs.get(ATTR_FLOPS),
        VERSION_MODEL_CONFIG: json.dumps(attrs.get(ATTR_MODEL_CONFIG), sort_keys=True),
        VERSION_DATA_SOURCE: data.source, VERSION_DATA_NAME: data.name or data.path or data.source,
        TAG_COMMIT: run.data.tags.get(TAG_COMMIT, "unknown"), VERSION_VERIFY: VERIFY_PENDING,
    }
    if champion.point_mean is not None:
        tags[VERSION_POINT_MEAN] = repr(champion.point_mean)
        tags[VERSION_POINT_SEEDS] = champion.point_seeds
    if spec.objective.second is not None and len(trial.values) > 1:
        tags[VERSION_SECOND_PREFIX + spec.objective.second] = repr(float(trial.values[1]))
    for key, value in (attrs.get(ATTR_TEST) or {}).items():
        tags[version_metric_tag(key)] = repr(float(value))
    for key, value in point_from_optuna(spec, trial.params).params.items():
        tags[VERSION_DESIGN_PREFIX + key] = json.dumps(value)
    return {key: str(value) for key, value in tags.items() if value is not None}


def description(study: str, champion: Champion, spec: StudySpec, run: Any, *, verdict: str | None = None) -> str:
    """The model version's description: what was promoted, how good it is (``verdict``: its design point's verdict
    with the legend of the verdicts), what it expects as input."""
    trial, attrs = champion.trial, champion.trial.user_attrs
    test = ", ".join(f"{k} = {float(v):.4f}" for k, v in sorted((attrs.get(ATTR_TEST) or {}).items())) or "none"
    mean = (f"; design point mean {champion.point_mean:.4f} over {champion.point_seeds} seed(s)"
            if champion.point_mean is not None else "")
    params, flops = attrs.get(ATTR_PARAMS), attrs.get(ATTR_FLOPS)
    size = (f"{params:,} parameters · {flops:,} FLOPs per image (1 multiply-add = 2 FLOPs)"
            if params is not None and flops is not None else "size unknown")
    shape = f"(B, {run.data.params.get('data.channels', 'C')}, {run.data.params.get('data.image_size', 'S')}, " \
            f"{run.data.params.get('data.image_size', 'S')})"
    return (
        f"Champion of sasa-lab study `{study}`: trial #{trial.number}, design point "
        f"{attrs.get(ATTR_POINT)}, seed {attrs.get(ATTR_SEED)}, MLflow run {run.info.run_id}.\n"
        f"{spec.objective.metric} = {champion.value:.4f} ({spec.objective.direction}){mean}.\n"
        + (f"{verdict}\n" if verdict else "") +
        f"Test: {test}.\n{size}. Data: {spec.data.source} ({spec.data.name or spec.data.path or spec.data.source}).\n"
        f"Input: float32 {shape} raw images, values in [0, 1]; the training split's per-channel mean/std "
        "normalisation is inside the model (sasa.models.normalized; tags sasa.input_mean/std). Output: logits.\n"
        f"Rule: {champion.rule} ({VERSION_PREFER} = {champion.prefer})."
        + (f"\n{champion.notice[0].upper()}{champion.notice[1:]}." if champion.notice else "")
    )


def one_line(exc: BaseException) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())[:1000]
