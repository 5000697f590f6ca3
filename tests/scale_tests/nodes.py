"""Losing processes as a node does: one worker's process group, or a whole command's session, killed with SIGKILL.

A study's workers each run in their own process group (``platform/study/workers.py``): killing a worker's group takes
the worker and its children (DataLoader workers, DDP ranks) at once, as losing its node would, while the main process
and the other workers carry on. Killing a command's session (it was started with ``start_new_session``) takes the main
process and every worker group. Also: waiting for a trial that has saved an epoch (mid-trial, resumable).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from platform.records import ATTR_POINT, ATTR_RUN, ATTR_SEED, ATTR_WORKER
from tests.support.limits import HANG_S

POLL_S = 0.1  # how often the session is looked at again while the kernel takes its processes down


def session_pids(session_id: int) -> list[int]:
    """Every live (not zombie) process whose session is ``session_id`` (from ``/proc``: a command and all its worker
    groups)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) == session_id and fields[0] != "Z":  # state, ppid, pgrp, session
                found.append(int(entry.name))
    return found


def kill_session(session_id: int) -> None:
    """SIGKILL every process of a command started with ``start_new_session`` (its session id is its pid), again
    until none is left — the event waited for (a process started while the first ones were killed is caught by the
    next pass); only a session still alive after the hang limit fails."""
    deadline = time.monotonic() + HANG_S
    while pids := session_pids(session_id):
        assert time.monotonic() < deadline, f"processes {pids} of session {session_id} survive SIGKILL"
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(POLL_S)


def saved_epoch(checkpoint: Path) -> int | None:
    """The epoch a complete ``last.ckpt`` holds, or None while it does not exist / is being written."""
    try:
        return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"])
    except (OSError, RuntimeError, EOFError, KeyError, ValueError):
        return None


def trial_with_checkpoint(trials: list[optuna.trial.FrozenTrial], trial_root: Path,
                          epochs: int) -> optuna.trial.FrozenTrial | None:
    """A RUNNING trial (with its worker and MLflow run recorded) that has saved an epoch before its last, or None."""
    for trial in trials:
        attrs = trial.user_attrs
        if trial.state != TrialState.RUNNING or ATTR_WORKER not in attrs or ATTR_RUN not in attrs:
            continue
        epoch = saved_epoch(trial_root / f"{attrs[ATTR_POINT]}-seed{attrs[ATTR_SEED]}" / "last.ckpt")
        if epoch is not None and epoch < epochs - 1:
            return trial
    return None
