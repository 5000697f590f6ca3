"""Study lifecycle: create or resume the Optuna study, keep the design exactly-once, recover dead trials.

Exactly-once accounting is by *(design point, seed)*. A pair is **done** when a trial for it is COMPLETE, PRUNED,
or FAIL with a recorded reason (a genuine failure: NaN, OOM, invalid options — rerunning would fail again); it is
**pending** while a trial for it is WAITING or RUNNING; otherwise it is **missing** and gets enqueued. A trial
left RUNNING by a dead process (kill -9, node loss: detected by pid on this host, by Optuna's heartbeat elsewhere)
is failed as an infrastructure failure (``ATTR_INFRA_FAIL`` says which worker was lost and how it was found), one
interrupted by Ctrl-C without a reason; either way its pair becomes missing and runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from ..records import (
    ARCHIVE_MARK,
    ATTR_INFRA_FAIL,
    ATTR_ORIGIN,
    ATTR_POINT,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_WORKER,
    ORIGIN_SAMPLED,
    STUDY_FINALISTS,
    STUDY_FINGERPRINT,
    STUDY_SPEC,
    TAG_TRIAL,
    is_confirmation,
    is_done,
    pair_of,
)
from ..search import directions, grid_points, make_pruner, make_sampler, planned_points, sampled_target
from ..spec.compare import NON_RESULT_KEYS, result_changes
from ..spec.study_spec import StudySpec
from ..stores.connect import study_exists
from ..stores.patient_storage import GRACE_PERIOD_S, heartbeats_trustworthy
from ..stores.redaction import redact
from ..stores.sqlite_files import process_alive
from .tracking import Tracker


class StudyConflictError(Exception):
    """The stored study was made from a different spec; starting over must be explicit."""


def fingerprint(spec_dict: dict) -> str:
    relevant = {k: v for k, v in spec_dict.items() if k not in NON_RESULT_KEYS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def open_study(spec: StudySpec, storage: RDBStorage, *, fresh: bool) -> tuple[optuna.Study, str | None]:
    """Create or load the study; with ``fresh``, archive an existing one first (never delete results).

    Returns the study and, when one was archived, the archive's name.
    """
    spec_dict = spec.resolved_dict()
    digest = fingerprint(spec_dict)
    archived = None
    if study_exists(storage, spec.name):
        existing = optuna.load_study(study_name=spec.name, storage=storage)
        if fresh:
            archived = f"{spec.name}{ARCHIVE_MARK}{time.strftime('%Y%m%d-%H%M%S')}"
            optuna.copy_study(from_study_name=spec.name, from_storage=storage, to_storage=storage,
                              to_study_name=archived)
            optuna.delete_study(study_name=spec.name, storage=storage)
        elif existing.user_attrs.get(STUDY_FINGERPRINT) != digest and (
            changed := result_changes(existing.user_attrs.get(STUDY_SPEC, {}), spec_dict)
        ):
            raise StudyConflictError(
                f"study '{spec.name}' already exists with a different spec (changed: {', '.join(changed) or '?'}); "
                "rerun with --fresh to archive it and start over, or give the study a new name"
            )
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        load_if_exists=True,
        directions=directions(spec),
        sampler=make_sampler(spec),
        pruner=make_pruner(spec),
    )
    if not study.metric_names:  # named objectives in Optuna's tools (optuna-dashboard, plots)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names(spec))
    if STUDY_FINGERPRINT not in study.user_attrs:
        study.set_user_attr(STUDY_FINGERPRINT, digest)
        study.set_user_attr(STUDY_SPEC, json.loads(redact(json.dumps(spec_dict, default=str)) or "{}"))
    return study, archived


def metric_names(spec: StudySpec) -> list[str]:
    """The study's objective names, in Optuna's order: the metric, then the second objective if any."""
    return [spec.objective.metric] + ([spec.objective.second] if spec.objective.second else [])


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    pending: int

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def progress(study: optuna.Study, spec: StudySpec) -> Progress:
    trials = study.get_trials(deepcopy=False)
    done = {pair_of(t) for t in trials if is_done(t)} - {None}
    pending = {
        pair_of(t) for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)
    } - {None} - done
    seeds = len(spec.search.initial_seeds)
    if spec.search.design == "grid":  # adaptive seeds: the decision rounds add pairs as they go
        total = max(len(grid_points(spec)) * seeds, len(done) + len(pending))
    else:
        planned = (sampled_target(spec) or 0) * seeds + confirmation_pairs(study, spec)
        total = max(planned, len(done) + len(pending))
    return Progress(total=total, done=len(done), pending=len(pending))


def confirmation_pairs(study: optuna.Study, spec: StudySpec) -> int:
    """The (design point, seed) pairs a sampled design's confirmation round plans at least (its first fresh seeds:
    progress counts them ahead; ``study/confirm.py`` runs the round)."""
    confirm = spec.search.confirmation
    if confirm is None:
        return 0
    stored = study.user_attrs.get(STUDY_FINALISTS)
    points = planned_points(spec) if stored is None else len(stored["points"]) + bool(stored.get("reference"))
    return points * confirm.seeds.min


def resume_note(study: optuna.Study, spec: StudySpec) -> str | None:
    """What a resumed study says before it runs: trials done, which trials are retried (interrupted, or left
    RUNNING by a dead process) and how many remain; None for a study that has not started yet."""
    trials = study.get_trials(deepcopy=False)
    if not any(t.state != TrialState.WAITING for t in trials):
        return None
    state = progress(study, spec)
    done = {pair_of(t) for t in trials if is_done(t)}
    retried: dict[tuple[str, int], int] = {}
    for trial in trials:  # the latest unsettled failure of every pair that is still to run
        pair = pair_of(trial)
        if pair is not None and pair not in done and trial.state == TrialState.FAIL and not is_done(trial):
            retried[pair] = trial.number
    left = state.total - state.done
    note = f"resuming study '{spec.name}': {state.done}/{state.total} trials done"
    if retried:
        listed = ", ".join(f"#{number} {point} seed={seed}" for (point, seed), number in sorted(
            retried.items(), key=lambda kv: kv[1]))
        note += f"; retrying {len(retried)} interrupted or lost trial{'s' * (len(retried) != 1)}: {listed}"
    return note + f"; {left} trial{'s' * (left != 1)} remain{'s' * (left == 1)}"


def sampled_count(study: optuna.Study) -> int:
    """Trials whose design point the sampler chose (search designs; the other seeds are enqueued copies)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get(ATTR_ORIGIN) == ORIGIN_SAMPLED)


def nothing_left(study: optuna.Study, spec: StudySpec) -> bool:
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if waiting:
        return False
    if spec.search.design == "grid":
        return True
    target = sampled_target(spec)  # n_trials, or fewer when the space has fewer distinct points
    return target is not None and sampled_count(study) >= target


def enqueue_missing(study: optuna.Study, spec: StudySpec, extra: dict[str, int] | None = None) -> int:
    """Enqueue every (design point, seed) that is neither done nor pending; returns how many were enqueued.

    Grid: every point × the initial seeds, plus ``extra`` ({point key: seed}, a decision round's next seeds), plus
    every seed a round added earlier whose trial failed without a reason (a dead or interrupted process: it runs
    again, so a reference does not lose the seed for good).
    """
    trials = study.get_trials(deepcopy=False)
    covered = {pair_of(t) for t in trials if is_done(t) or t.state in (TrialState.WAITING, TrialState.RUNNING)}
    interrupted = {pair for t in trials if t.state == TrialState.FAIL and (pair := pair_of(t)) is not None}
    wanted: list[tuple[dict, str, int]] = []
    if spec.search.design == "grid":
        for point in grid_points(spec):
            wanted += [(point.optuna_params, point.key, seed) for seed in spec.search.initial_seeds]
            if extra and point.key in extra:
                wanted.append((point.optuna_params, point.key, extra[point.key]))
            wanted += [(point.optuna_params, point.key, seed) for key, seed in sorted(interrupted) if key == point.key]
    else:  # retry interrupted trials of search designs with the same parameters and seed
        for trial in trials:
            pair = pair_of(trial)
            if trial.state == TrialState.FAIL and pair is not None and not is_done(trial) \
                    and not is_confirmation(trial):  # the confirmation round retries its own (study/confirm.py)
                wanted.append((dict(trial.params), pair[0], pair[1]))
    count = 0
    for params, key, seed in wanted:
        if (key, seed) in covered:
            continue
        covered.add((key, seed))
        study.enqueue_trial(params, user_attrs={ATTR_POINT: key, ATTR_SEED: seed})
        count += 1
    return count


def dead_running_trials(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials whose worker process on this host no longer exists."""
    host = socket.gethostname()
    dead = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(ATTR_WORKER, ""))
        name, _, pid = worker.rpartition(":")
        if name == host and pid.isdigit() and not process_alive(int(pid)):
            dead.append(trial)
    return dead


def _mark_lost(storage: optuna.storages.BaseStorage, trial_id: int, reason: str) -> None:
    """Record on a RUNNING trial why it is about to be failed (an infrastructure failure: its pair runs again)."""
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # another recovery finished it first
        storage.set_trial_user_attr(trial_id, ATTR_INFRA_FAIL, reason)


def mark_lost_node(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    """``PatientStorage.on_stale``: a trial whose heartbeat stopped belonged to a lost node (or a killed worker on
    another host) — say so on the trial before Optuna or :func:`recover` fails it."""
    worker = storage.get_trial(trial_id).user_attrs.get(ATTR_WORKER, "a worker")
    _mark_lost(storage, trial_id, f"lost node: no heartbeat from {worker} for over {GRACE_PERIOD_S} s")


def recover(study: optuna.Study, tracker: Tracker, experiment_id: str, parent_run_id: str) -> list[int]:
    """Fail trials of dead processes and close every child MLflow run they left RUNNING; returns trial numbers.

    Both kinds of loss are infrastructure failures (``ATTR_INFRA_FAIL``): a worker process on this host that no
    longer exists, and a trial whose heartbeat stopped (another host's worker, or a lost node; marked by
    :func:`mark_lost_node` as the storage finds it stale). Their MLflow runs are closed FAILED with that reason."""
    storage = study._storage
    failed = []
    for trial in dead_running_trials(study):
        _mark_lost(storage, trial._trial_id, f"lost worker: process {trial.user_attrs[ATTR_WORKER]} ended without "
                                             "reporting (killed, or out of memory)")
        try:
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed.append(trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    if heartbeats_trustworthy(storage):  # not right after a database outage: live workers could not beat then
        optuna.storages.fail_stale_trials(study)  # other hosts: Optuna's heartbeat
    live = {
        str(t.user_attrs[ATTR_RUN])
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if ATTR_RUN in t.user_attrs
    }
    backend = getattr(storage, "_backend", storage)  # past Optuna's cache: the reason is read as the database has it

    def reason_of(run: Any) -> str | None:
        number = str(run.data.tags.get(TAG_TRIAL, ""))
        if not number.isdigit():
            return None
        try:
            trial_id = backend.get_trial_id_from_study_id_trial_number(study._study_id, int(number))
            return backend.get_trial(trial_id).user_attrs.get(ATTR_INFRA_FAIL)
        except KeyError:
            return None

    tracker.close_stale_children(experiment_id, parent_run_id, live, reason_of=reason_of)
    return failed
