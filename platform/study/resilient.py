"""The study's MLflow access, riding out a tracking-server outage: metrics kept in order, calls retried.

:func:`make_patient` makes the study's :class:`.tracking.Tracker` patient: its client becomes a
:class:`PatientClient`:

- ``log_batch`` (every metric, param and tag the study logs, the epoch logger's included) goes through an
  :class:`Outbox`: delivered at once while the server answers; while it does not, kept in order — nothing dropped —
  and training goes on; the outbox retries every :data:`RETRY_EVERY_S` and delivers everything, in order, when the
  server is back;
- every other call (create a run, close it, log a file, search) first delivers what the outbox holds, then retries
  through the outage (:class:`..stores.patience.Patience`) for up to the outage budget;
- the model is logged (MLflow's fluent API) the same patient way; before a retry, whatever logged model the failed
  try left for the run is deleted (:func:`discard_logged_models`), so a trial never has two models, one orphaned.

When the budget runs out, :class:`..stores.faults.StoreOutageError` stops the study cleanly (a rerun resumes).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from mlflow import MlflowClient

from ..stores.faults import infrastructure_cause, is_no_space
from ..stores.patience import DEFAULT_BUDGET_S, Patience
from ..stores.redaction import redact

RETRY_EVERY_S = 5.0


class Outbox:
    """``log_batch`` calls bound for MLflow, delivered in order; kept while the server is unreachable."""

    def __init__(self, client: MlflowClient, patience: Patience, *, retry_every_s: float = RETRY_EVERY_S) -> None:
        self._client, self._patience, self._retry_every_s = client, patience, retry_every_s
        self._pending: deque[tuple[str, dict[str, list]]] = deque()
        self._last_try = 0.0
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._pending)

    def send(self, run_id: str, batch: dict[str, list]) -> None:
        """Deliver ``batch`` now, or keep it (after the ones kept before it) while the server is away."""
        with self._lock:
            self._pending.append((run_id, batch))
            if len(self._pending) > 1 and time.monotonic() - self._last_try < self._retry_every_s:
                return  # in an outage: try again every few seconds, not at every step
            self._deliver(wait=False)

    def drain(self) -> None:
        """Deliver everything kept, waiting through an outage for up to the budget (raises StoreOutageError)."""
        with self._lock:
            if self._pending:
                self._patience.call(lambda: self._deliver(wait=True))

    def _deliver(self, *, wait: bool) -> None:
        while self._pending:
            run_id, batch = self._pending[0]
            self._last_try = time.monotonic()
            try:
                self._patience.attempt(lambda: self._client.log_batch(run_id, **batch))  # noqa: B023 - called here
            except Exception as exc:
                cause = infrastructure_cause(exc)
                if cause is None or is_no_space(exc):
                    self._pending.popleft()  # the batch's own error: it will never go through
                    raise
                if wait:
                    raise  # the patient caller waits and calls again
                self._patience.failed(cause)
                return
            self._pending.popleft()
            self._patience.answered()


class PatientClient:
    """An ``MlflowClient`` whose ``log_batch`` goes through an :class:`Outbox` and whose other calls wait out an
    outage (after delivering the outbox, so everything reaches the server in the order it was logged)."""

    def __init__(self, client: MlflowClient, patience: Patience) -> None:
        self._client = client
        self._patience = patience
        self.outbox = Outbox(client, patience)
        self._journal: dict[str, list[dict[str, list]]] = {}  # what each open run was sent (study.durable)

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
        batch = {"metrics": list(metrics), "params": list(params), "tags": list(tags)}
        self._journal.setdefault(run_id, []).append(batch)
        self.outbox.send(run_id, batch)

    def journal(self, run_id: str) -> list[dict[str, list]]:
        """Every ``log_batch`` sent to ``run_id`` while it is open, in order."""
        return self._journal.get(run_id, [])

    def set_terminated(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        self.outbox.drain()
        self._patience.call(lambda: self._client.set_terminated(run_id, *args, **kwargs))
        self._journal.pop(run_id, None)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def patient(*args: Any, **kwargs: Any) -> Any:
            self.outbox.drain()
            return self._patience.call(lambda: attr(*args, **kwargs))

        return patient


def discard_logged_models(client: MlflowClient, run_id: str) -> list[str]:
    """Delete every logged model whose source is ``run_id`` (what a failed try of logging the trial's model left:
    pending, failed, or even finished before the call failed); returns their ids. A retry then logs the one model
    the trial records, and no model is left that no trial points to."""
    experiment_id = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'")
    for model in found:
        client.delete_logged_model(model.model_id)
    return [model.model_id for model in found]


def make_patient(tracker: Any, *, outage_budget_s: float = DEFAULT_BUDGET_S) -> Patience:
    """Make ``tracker`` (a :class:`.tracking.Tracker`) ride out a tracking-store outage of up to ``outage_budget_s``:
    its client becomes a :class:`PatientClient`, and logging the model waits the same way. Returns its patience."""
    uri = str(tracker.tracking_uri)
    patience = Patience(f"the MLflow tracking store {redact(uri)}", budget_s=outage_budget_s,
                        mlflow=uri.startswith(("http://", "https://")))
    raw = tracker.client
    client = PatientClient(raw, patience)
    tracker.client = client
    log_backbone = tracker.log_backbone

    def patient_log_backbone(run_id: str, *args: Any, **kwargs: Any) -> Any:
        client.outbox.drain()
        tries = 0

        def attempt() -> Any:
            nonlocal tries
            if tries:  # a try that failed part-way may have left a logged model of this run: never two
                discard_logged_models(raw, run_id)
            tries += 1
            return log_backbone(run_id, *args, **kwargs)

        return patience.call(attempt)

    tracker.log_backbone = patient_log_backbone
    tracker.patience = patience
    return patience
