"""The Optuna storage, patient through a database outage: every call retries on connection errors.

:class:`PatientStorage` is Optuna's ``RDBStorage`` whose calls (the ones a study makes, directly or through Optuna's
cache) go through a :class:`.patience.Patience`: a PostgreSQL restart, a failover or dropped connections are waited
out, within the outage budget. Opening the storage is not patient (the preflight fails fast). The heartbeat is
tried once per beat: a missed beat is caught up by the next, and a thread that waits would hold the trial's end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from optuna.storages import RDBStorage

from .faults import infrastructure_cause

# RDBStorage's methods that a study calls (the public API and the private ones Optuna's _CachedStorage calls).
PATIENT_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param",
    "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials",
    "get_best_trial", "_get_best_trial_id", "_get_stale_trial_ids",
)


class PatientStorage(RDBStorage):
    """``RDBStorage`` whose calls wait out a database outage (set :attr:`patience` after opening)."""

    patience: Any = None  # a ``.patience.Patience`` (not imported: this module stays beside it, below connect)

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
