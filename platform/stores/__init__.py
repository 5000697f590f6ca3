"""Where a study's results live and how they are reached: locations under ``./runs/``, opening the Optuna storage
and checking the MLflow tracking store, and password redaction for everything printed or logged (:mod:`.redaction`).
What the study writes to MLflow is :mod:`..study.tracking`."""

from .connect import StoreError, check_tracking, open_storage, study_exists
from .folders import folder_problem
from .locations import Stores, ensure_local_dirs, resolve_stores
from .redaction import redact

__all__ = ["StoreError", "Stores", "check_tracking", "ensure_local_dirs", "folder_problem", "open_storage", "redact",
           "resolve_stores", "study_exists"]
