"""Supervising parallel worker processes (``--workers N`` / ``execution.devices``).

The main process has already prepared the data, created the study, enqueued the design and opened the MLflow
parent run. It then starts one worker per :class:`~.devices.WorkerPlan`: the same command with
``python -m platform.study.worker`` with the study's arguments and the plan in ``SASA_WORKER_PLAN`` (:mod:`.worker`);
workers share the Optuna storage and the parent run.
While they run, the main process shows one combined progress bar, prefixes each worker's output with ``[wI]``, and
every few seconds does the study's housekeeping: a worker killed mid-trial has its trial failed, its MLflow run
closed as FAILED and its (design point, seed) enqueued again for the surviving workers. If every worker has
exited and the design is still incomplete (e.g. all were killed), a new round of workers starts (at most 3).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

import optuna
from tqdm import tqdm  # plain: bars are shown on a terminal only (tqdm.auto would want widgets in a notebook)

from ..spec.study_spec import StudySpec
from ..stores.faults import InfrastructureError
from .devices import WorkerPlan
from .lifecycle import nothing_left, progress

WORKER_MODULE = f"{__package__}.worker"  # ``platform.study.worker`` from the repo root (``sasa_lab.`` installed)
HOUSEKEEPING_EVERY_S = 5.0
EXIT_STOPPED = 75  # a worker stopped for the infrastructure (``arguments.EXIT_STOPPED``)
MAX_ROUNDS = 3


def _pump(proc: subprocess.Popen, prefix: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        tqdm.write(f"{prefix} {line.rstrip()}")


def _start(plan: WorkerPlan, argv: Sequence[str]) -> subprocess.Popen:
    env = {
        **os.environ,
        **plan.to_env(),
        "PYTHONUNBUFFERED": "1",
        "TQDM_DISABLE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    threading.Thread(target=_pump, args=(proc, f"[w{plan.index}]"), daemon=True).start()
    return proc


def _stop(procs: list[subprocess.Popen]) -> None:
    """After Ctrl-C: let workers finish their own interrupt handling, then insist."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_workers(study: optuna.Study, spec: StudySpec, plans: list[WorkerPlan], argv: Sequence[str], *,
                housekeeping: Callable[[], object], bar: bool = True) -> bool:
    """Run the study on ``plans`` worker processes; True when the design is done.

    ``housekeeping`` (the session's: recover dead trials, enqueue what is missing, decision rounds) runs every
    few seconds while they work. Without ``bar`` (not a terminal) only the workers' one line per trial shows
    progress. KeyboardInterrupt stops every worker (each fails its running trial as
    interrupted) and propagates.
    """
    state = progress(study, spec)
    study_bar = tqdm(total=state.total, initial=state.done, desc=f"study {spec.name} ({len(plans)} workers)",
                     unit="trial", dynamic_ncols=True, disable=not bar)
    try:
        for round_number in range(1, MAX_ROUNDS + 1):
            if nothing_left(study, spec):
                break
            procs = [_start(plan, argv) for plan in plans]
            try:
                last = 0.0
                while any(p.poll() is None for p in procs):
                    time.sleep(0.5)
                    if time.monotonic() - last >= HOUSEKEEPING_EVERY_S:
                        last = time.monotonic()
                        housekeeping()
                        now = progress(study, spec)
                        study_bar.total, study_bar.n = now.total, now.done
                        study_bar.refresh()
            except KeyboardInterrupt:
                _stop(procs)
                raise
            except InfrastructureError:  # the workers meet the same outage and stop within their own budget
                for proc in procs:
                    proc.wait()
                raise
            stopped = [plan.index for plan, proc in zip(plans, procs, strict=True) if proc.returncode == EXIT_STOPPED]
            if stopped:
                raise InfrastructureError(f"worker{'s' * (len(stopped) > 1)} {', '.join(f'w{i}' for i in stopped)} "
                                         "stopped for the infrastructure (the [w…] stopped: lines above say why)")
            for plan, proc in zip(plans, procs, strict=True):
                if proc.returncode not in (0, None):
                    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"code {proc.returncode}"
                    tqdm.write(f"[w{plan.index}] exited with {how} (round {round_number})")
            housekeeping()
            now = progress(study, spec)
            study_bar.total, study_bar.n = now.total, now.done
            study_bar.refresh()
    finally:
        study_bar.close()
    return nothing_left(study, spec)
