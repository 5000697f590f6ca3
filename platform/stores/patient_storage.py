"""The Optuna storage, patient through a database outage: every call retries on connection errors.

:class:`PatientStorage` is Optuna's ``RDBStorage`` whose calls (the ones a study makes, directly or through Optuna's
cache) go through a :class:`.patience.Patience`: a PostgreSQL restart, a failover or dropped connections are waited
out, within the outage budget. Opening the storage is not patient (the preflight fails fast). The heartbeat is
tried once per beat: a missed beat is caught up by the next, and a thread that waits would hold the trial's end.
Stale heartbeats are not judged while the database is away, nor for a grace period after it was
(:func:`heartbeats_trustworthy`): live workers could not beat then. Optuna itself looks for stale trials at the start
of every trial, so the rule holds there too, not only in the study's own recovery. A trial found stale is handed to
:attr:`PatientStorage.on_stale` before it is failed (the study marks it as a lost node's: an infrastructure failure),
whoever fails it: Optuna at a trial's start or the study's housekeeping.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from optuna.storages import RDBStorage

from .faults import infrastructure_cause

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 40

# RDBStorage's methods that a study calls (the public API and the private ones Optuna's _CachedStorage calls).
PATIENT_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param",
    "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials",
    "get_best_trial", "_get_best_trial_id",
)  # ``_get_stale_trial_ids`` is the class's own (below): patient, and silent right after an outage


class PatientStorage(RDBStorage):
    """``RDBStorage`` whose calls wait out a database outage (set :attr:`patience` after opening)."""

    patience: Any = None  # a ``.patience.Patience`` (not imported: this module stays beside it, below connect)
    on_stale: Callable[[RDBStorage, int], None] | None = None  # marks a stale trial (still RUNNING) before its FAIL

    def record_heartbeat(self, trial_id: int) -> None:
        if self.patience is None:
            return super().record_heartbeat(trial_id)
        try:
            self.patience.attempt(lambda: RDBStorage.record_heartbeat(self, trial_id))
        except Exception as exc:
            cause = infrastructure_cause(exc)
            if cause is None:
                raise
            self.patience.failed(cause)  # the main thread's next call waits; this beat is skipped
        else:
            self.patience.answered()

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Trials whose heartbeat is older than the grace period — none while heartbeats are not to be trusted
        (Optuna fails what this returns at the start of every trial, bypassing the study's own recovery)."""
        if not heartbeats_trustworthy(self):
            return []
        method = RDBStorage._get_stale_trial_ids
        stale = method(self, study_id) if self.patience is None else self.patience.call(lambda: method(self, study_id))
        if self.on_stale is not None:
            for trial_id in stale:
                self.on_stale(self, trial_id)
        return stale


def heartbeats_trustworthy(storage: Any) -> bool:
    """May stale heartbeats be judged now? Not while the database is away, nor for a grace period after it was:
    live workers could not record their beats then (every node sees the same outage, so none fails another's
    live trial). ``storage`` is the study's (Optuna may wrap it in its cache)."""
    backend = getattr(storage, "_backend", storage)
    patience = getattr(backend, "patience", None)
    return patience is None or not patience.away_within(GRACE_PERIOD_S + HEARTBEAT_INTERVAL_S)


def _patient(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self: PatientStorage, *args: Any, **kwargs: Any) -> Any:
        if self.patience is None:
            return method(self, *args, **kwargs)
        return self.patience.call(lambda: method(self, *args, **kwargs))

    return call


for _name in PATIENT_METHODS:
    setattr(PatientStorage, _name, _patient(_name))
