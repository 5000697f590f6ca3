"""Supervising parallel worker processes (``--workers N`` / ``execution.devices``).

The main process has already prepared the data, created the study, enqueued the design and opened the MLflow
parent run. It then starts one worker per :class:`~.devices.WorkerPlan`: the same command with
``python -m platform.study.worker`` with the study's arguments and the plan in ``SASA_WORKER_PLAN`` (:mod:`.worker`);
workers share the Optuna storage and the parent run.
While they run, the main process shows one combined progress bar, prefixes each worker's output with ``[wI]``, and
every few seconds does the study's housekeeping: a worker killed mid-trial has its trial failed, its MLflow run
closed as FAILED and its (design point, seed) enqueued again for the surviving workers. If every worker has
exited and the design is still incomplete (e.g. all were killed), a new round of workers starts (at most 3).

Each worker runs in **its own process group** (with its children: DataLoader workers, DDP follower ranks), as a
worker on its own node would. The group is the unit the supervisor stops — a worker that does not stop after Ctrl-C
is killed together with its children, none left behind — and the unit a lost node takes away (the scale tests kill
one worker's group, exactly what losing its node does, while the others carry on). Signals meant for the whole
command still reach every worker: while workers run, the main process passes SIGINT (a terminal's Ctrl-C), SIGTERM
and SIGHUP on to every worker's group, then handles the signal as before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from types import FrameType

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
PARENT_ENV = "SASA_WORKER_PARENT"  # the main process's pid, for the worker
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _pump(proc: subprocess.Popen, prefix: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        tqdm.write(f"{prefix} {line.rstrip()}")


def _start(plan: WorkerPlan, argv: Sequence[str]) -> subprocess.Popen:
    env = {
        **os.environ,
        **plan.to_env(),
        "PYTHONUNBUFFERED": "1",
        PARENT_ENV: str(os.getpid()),  # the worker dies with this process (``worker.die_with_parent``)
        "TQDM_DISABLE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        process_group=0,  # its own group: stopped, or lost, with its children (module docstring)
    )
    threading.Thread(target=_pump, args=(proc, f"[w{plan.index}]"), daemon=True).start()
    return proc


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the worker's process group (the worker and its children), if it still runs."""
    if proc.returncode is None:  # not ``poll()``: this also runs inside a signal handler
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)


@contextmanager
def _forwarding(procs: list[subprocess.Popen]) -> Iterator[None]:
    """While inside: SIGINT, SIGTERM and SIGHUP reach every worker in ``procs`` (their own process groups), then
    this process handles them as it did before (Ctrl-C: KeyboardInterrupt; the others: their previous handler or
    the default action). Main thread only (elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}

    def forward(signum: int, frame: FrameType | None) -> None:
        for proc in procs:
            _signal_group(proc, signum)
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        else:  # the default action (SIGINT's default handler is callable: not here)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in FORWARDED_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:  # ignored (a background job's SIGINT): the workers ignore it too
            previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _stop(procs: list[subprocess.Popen]) -> None:
    """After Ctrl-C (already passed on to every worker): let workers finish their own interrupt handling, then
    insist, then kill each remaining worker with its children."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
    for proc in procs:
        _signal_group(proc, signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _supervise(study: optuna.Study, spec: StudySpec, procs: list[subprocess.Popen],
               housekeeping: Callable[[], object], study_bar: tqdm) -> None:
    """Until every worker has exited: the study's housekeeping every few seconds, and the combined progress bar."""
    last = 0.0
    # Every worker is polled each time (not ``any``, which stops at the first alive): a dead one is reaped at once,
    # so its pid reads as gone and the housekeeping fails its trial now, not when its heartbeat runs out.
    while [p for p in procs if p.poll() is None]:
        time.sleep(0.5)
        if time.monotonic() - last >= HOUSEKEEPING_EVERY_S:
            last = time.monotonic()
            housekeeping()
            now = progress(study, spec)
            study_bar.total, study_bar.n = now.total, now.done
            study_bar.refresh()


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
            procs: list[subprocess.Popen] = []
            try:
                with _forwarding(procs):  # in place before the first worker starts: none misses a Ctrl-C
                    for plan in plans:
                        procs.append(_start(plan, argv))
                    _supervise(study, spec, procs, housekeeping, study_bar)
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
