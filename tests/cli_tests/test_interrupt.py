"""Issue 18, cause 5: Ctrl-C at any moment of a first run leaves a runs folder that the next run resumes.

One runs folder, one study, real processes (``python -m platform.study`` started as a user would, in its own
process group, SIGINT sent to the group as a terminal's Ctrl-C does). Each run is interrupted at a later moment
of store creation than the one before — found by the log line the command prints, not by sleeping alone — and is
itself the rerun of the previous one:

1. while the libraries import (torch's library is mapped into the process, no output yet): nothing may be created;
2. at MLflow's "Creating initial MLflow database tables";
3. at its "Updating database tables" (what bricked runs folders before: a half-migrated ``mlflow.db``);
4. once the MLflow store is linked into place (the Optuna study and the parent run are made next);
5. once the first trial runs (the stores exist now).

Each moment is an event the test sees (a line, a library mapped, a file, a store row), never a fixed delay: a fast
machine finishes the one-trial study seconds after its stores exist, so a delay would interrupt a finished run.
The study trains enough batches that the trial outlasts the test's reaction on any machine.

Every interrupted run must exit 130 with a bounded message and no traceback, and leave no MLflow run or Optuna
trial RUNNING and no store that is not whole; the last run finishes the study (exit 0).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli_tests.files import SPEC, spec_text
from tests.cli_tests.harness import TRACEBACK, base_env

STEP_TIMEOUT_S = 600.0  # a hang detector, not a speed bound: a healthy step takes seconds, 30× that under load
RUN_TIMEOUT_S = 1800.0  # the whole one-trial study of the last rerun (CI measured > 240 s with 8 jobs per core)
POLL_S = 0.01  # how often a moment is looked for: the reaction time of the test
STARTED: list[subprocess.Popen] = []  # killed at the end of each test, whatever happened
MLFLOW_CREATING = "MLflow store: creating its tables"  # the study's line for MLflow's "Creating initial … tables"
MLFLOW_UPDATING = "MLflow store: updating its tables"  # … and for its "Updating database tables" (the migration)


class Run:
    """``python -m platform.study`` in ``where``, output collected line by line (``\\r`` ends a line too)."""

    def __init__(self, where: Path, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "platform.study", SPEC, "--runs-dir", "runs", *args], cwd=where, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started = time.monotonic()
        STARTED.append(self.proc)
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        buffer = b""
        while chunk := self.proc.stdout.read1(4096):  # type: ignore[attr-defined]
            buffer += chunk
            *complete, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
            with self._seen:
                self.lines += [line.decode("utf-8", "replace") for line in complete if line.strip()]
                self._seen.notify_all()
        with self._seen:
            if buffer.strip():
                self.lines.append(buffer.decode("utf-8", "replace"))
            self._seen.notify_all()

    def wait_for(self, text: str) -> float:
        """Seconds since the start when a line holding ``text`` appeared (fails if the run ends first)."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self._seen:
            while not any(text in line for line in self.lines):
                assert self.proc.poll() is None or self._reader.is_alive(), \
                    f"the run ended (exit {self.proc.returncode}) before {text!r}:\n" + "\n".join(self.lines[-30:])
                assert time.monotonic() < deadline, f"no {text!r} within {STEP_TIMEOUT_S} s"
                self._seen.wait(timeout=0.2)
        return time.monotonic() - self.started

    def interrupt(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def finish(self, timeout_s: float = STEP_TIMEOUT_S) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail("hang: the run did not end after Ctrl-C:\n" + "\n".join(self.lines[-30:]))
        self._reader.join(timeout=10)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def _rows(path: Path, query: str) -> list[tuple]:
    if not path.is_file():
        return []
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        names = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        table = query.split(" FROM ")[1].split()[0]
        return list(connection.execute(query)) if table in names else []


def _wait_until(run: Run, what: str, happened: Callable[[], bool]) -> None:
    """Polls ``happened`` every few milliseconds until it is true (fails if the run ends first, or after a while)."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not happened():
        assert run.proc.poll() is None, f"the run ended (exit {run.proc.returncode}) before {what}:\n{run.output}"
        assert time.monotonic() < deadline, f"no {what} within {STEP_TIMEOUT_S} s"
        time.sleep(POLL_S)


def _torch_loaded(run: Run) -> bool:
    """torch's C++ library is mapped into the study's process: it is importing its libraries (seconds more)."""
    with contextlib.suppress(OSError):
        return "libtorch_cpu" in Path(f"/proc/{run.proc.pid}/maps").read_text()
    return False


def _a_running_trial(runs: Path) -> bool:
    return bool(_rows(runs / "optuna.db", "SELECT trial_id FROM trials WHERE state = 'RUNNING'"))


def _check_nothing_running(runs: Path) -> None:
    running_runs = _rows(runs / "mlflow.db", "SELECT run_uuid FROM runs WHERE status = 'RUNNING'")
    running_trials = _rows(runs / "optuna.db", "SELECT trial_id FROM trials WHERE state = 'RUNNING'")
    assert not running_runs, f"MLflow runs left RUNNING: {running_runs}"
    assert not running_trials, f"Optuna trials left RUNNING: {running_trials}"


def _check_interrupted(run: Run, moment: str) -> None:
    code = run.finish()
    assert TRACEBACK not in run.output, f"{moment}: traceback after Ctrl-C:\n{run.output[-3000:]}"
    assert code == 130, f"{moment}: exit {code}, expected 130:\n{run.output[-3000:]}"
    assert "interrupted" in run.output, run.output[-2000:]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield base_env(tmp_path / "hf-home")
    while STARTED:  # a failed assertion must not leave a study (and its compiler processes) running
        proc = STARTED.pop()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ctrl_c_at_every_moment_of_store_creation_then_resume(tmp_path: Path, env: dict[str, str]) -> None:
    where = tmp_path / "case"
    where.mkdir()
    # 40 training batches: the one trial outlasts the test's reaction (a poll, a signal) on any machine
    (where / SPEC).write_text(spec_text(train={"limit_train_batches": 40}))
    runs = where / "runs"

    # 1. during the imports: one line, exit 130, nothing created
    run = Run(where, env)
    _wait_until(run, "torch's library in the process", lambda: _torch_loaded(run))
    run.interrupt()
    _check_interrupted(run, "imports")
    assert len(run.lines) <= 3, run.output
    assert not any("MLflow store" in line for line in run.lines), f"interrupted after the imports: {run.output}"
    assert not runs.exists(), f"created during the imports: {sorted(p.name for p in runs.iterdir())}"

    # 2.–3. during MLflow's schema creation and migration, at their log lines
    for moment, line in (("creating", MLFLOW_CREATING), ("updating", MLFLOW_UPDATING)):
        run = Run(where, env)
        run.wait_for(line)  # a rerun after an interrupt must get here again: no "remove the file" on a fresh store
        run.interrupt()
        _check_interrupted(run, moment)
        _check_nothing_running(runs)
        leftovers = [p.name for p in runs.glob("*.creating-*")]  # removed by the next run, never used as stores
        assert all(p.startswith(".") for p in leftovers), leftovers

    # 4. once the MLflow store is in place (made after Optuna's): the study and the parent run are created next
    assert not (runs / "mlflow.db").exists(), "an interrupted creation left an MLflow store in place"
    run = Run(where, env)
    _wait_until(run, "MLflow store in place", lambda: (runs / "mlflow.db").exists())
    run.interrupt()
    _check_interrupted(run, "study creation")
    _check_nothing_running(runs)

    # 5. while the first trial trains (off a terminal no progress bar says so: the store does)
    run = Run(where, env)
    _wait_until(run, "running trial", lambda: _a_running_trial(runs))
    run.interrupt()
    _check_interrupted(run, "training")
    _check_nothing_running(runs)

    # the rerun resumes and finishes
    run = Run(where, env)
    code = run.finish(RUN_TIMEOUT_S)
    assert code == 0, run.output[-3000:]
    assert TRACEBACK not in run.output
    assert "trials done: 1/1" in run.output, run.output[-2000:]
    _check_nothing_running(runs)
    assert not list(runs.glob(".*.creating-*")), "a temporary store was left after a finished run"


def test_a_compile_run_uses_the_runs_folder_cache_repairs_it_and_survives_ctrl_c(tmp_path: Path,
                                                                                 env: dict[str, str]) -> None:
    """Cause 10: ``train.compile: true`` says that the first epoch compiles, keeps Inductor's cache in the runs
    folder (never the machine-wide default under TMPDIR), removes the empty ``.so`` a killed compile left there,
    and a Ctrl-C while it compiles exits 130 leaving nothing RUNNING."""
    where = tmp_path / "case"
    where.mkdir()
    (where / SPEC).write_text(spec_text(train={"compile": True}))
    poisoned = where / "runs" / "compile_cache" / "inductor" / "zz" / "czz.so"
    poisoned.parent.mkdir(parents=True)
    poisoned.write_bytes(b"")  # what a compile killed mid-write left
    machine_tmp = tmp_path / "machine-tmp"  # where the default cache (/tmp/torchinductor_<user>) would go
    machine_tmp.mkdir()
    run = Run(where, {**env, "TMPDIR": str(machine_tmp)})
    run.wait_for("train.compile")
    line = next(line for line in run.lines if "train.compile" in line)
    assert "compile" in line and "minutes" in line, run.output[-2000:]
    run.wait_for("removed 1 broken file")
    deadline = time.monotonic() + STEP_TIMEOUT_S
    inductor = where / "runs" / "compile_cache" / "inductor"
    while not [p for p in inductor.iterdir() if p.name != "zz"] and time.monotonic() < deadline:
        time.sleep(1.0)  # until the compilation writes into the runs folder's cache
    assert [p for p in inductor.iterdir() if p.name != "zz"], "nothing compiled into the runs folder's cache"
    assert not poisoned.exists(), "the broken .so was not removed"
    run.interrupt()
    _check_interrupted(run, "compiling")
    _check_nothing_running(where / "runs")
    # torch._dynamo makes the (empty) default folder when it is imported, in any process; nothing may be built there
    built = [p for p in machine_tmp.glob("torchinductor_*/**/*") if p.is_file()]
    assert not built, f"compiled into the machine-wide cache: {built[:3]}"
