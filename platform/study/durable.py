"""A finished trial is never lost: its result is written next to the trial before the stores record it.

Once a trial has trained (and was not pruned), :func:`save_finished` writes ``finished.pt`` in the trial's work
folder — the training outcome, the trained network, the example batch and normalisation its model is logged with,
and every metric and tag batch its MLflow run was sent — atomically (a temporary file, flushed, then renamed: a
full disk or a kill leaves no half-written file to read back). Then the stores record it. If they cannot (a store
away longer than the outage budget stops the study), the trial's pair runs again on the next run, and
:func:`load_finished` hands the objective that result instead of training again: the new MLflow run receives the
same metrics, every epoch's included, and the same model. The folder is removed once the result is recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..stores.faults import is_no_space

FINISHED_FILE = "finished.pt"


@dataclass
class Finished:
    """What a trained trial needs to be recorded: ``outcome`` is a ``training.trainer.TrainOutcome``."""

    outcome: Any
    net: torch.nn.Module
    example: torch.Tensor
    mean: Any
    std: Any
    batches: list[dict[str, list]]  # ``log_batch`` keyword arguments sent to the trial's run, in order


def save_finished(work_dir: Path, finished: Finished) -> Path | None:
    """Write ``finished`` durably to ``work_dir / finished.pt`` (atomic: never read back half-written); None when
    the network cannot be pickled (a compiled one): the result is then recorded as before, without this net. A full
    disk raises (the infrastructure's failure: the study stops cleanly)."""
    path = work_dir / FINISHED_FILE
    partial = path.with_name(f".{FINISHED_FILE}.partial")
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("wb") as handle:
            torch.save(vars(finished), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError:
        raise
    except Exception as exc:  # not picklable: nothing half-written is left, the trial goes on
        if is_no_space(exc):  # torch.save reports a full disk as a RuntimeError, the OSError its context
            raise
        return None
    finally:
        partial.unlink(missing_ok=True)
    return path


def load_finished(work_dir: Path) -> Finished | None:
    """The result a previous run saved in ``work_dir`` but could not record, or None."""
    path = work_dir / FINISHED_FILE
    if not path.is_file():
        return None
    try:  # our own file, written by save_finished: it holds a pickled network
        saved = torch.load(path, map_location="cpu", weights_only=False)
        return Finished(**saved)
    except Exception:  # unreadable (another version's classes, a damaged disk): train again
        return None


def replay(client: Any, run_id: str, batches: list[dict[str, list]]) -> None:
    """Send a saved trial's metric and tag batches to its new run (params were logged when the run began)."""
    for batch in batches:
        metrics, tags = batch.get("metrics") or [], batch.get("tags") or []
        if metrics or tags:
            client.log_batch(run_id, metrics=metrics, tags=tags)


def journal_of(tracker: Any, run_id: str) -> list[dict[str, list]]:
    """Every batch sent to ``run_id`` so far (a patient tracker's journal; empty for a plain one)."""
    journal = getattr(tracker.client, "journal", None)
    return list(journal(run_id)) if callable(journal) else []
