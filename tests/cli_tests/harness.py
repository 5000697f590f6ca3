"""Running a command as a user would, and judging what it did: exit code, output, time limit, side effects.

:class:`Runner` starts ``python -m MODULE ARGS`` in a case's folder — through the fork server
(:mod:`tests.cli_tests.forkserver`, the default: the imports are paid once) or, with
``SASA_BAD_INPUTS_MODE=subprocess``, as a real fresh process each time. :func:`snapshot` records a folder tree
(paths, sizes, modification times; symlinks not followed) and :func:`store_dump` the rows of a SQLite store, so a
test can tell "nothing was created or modified" exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
MODE = os.environ.get("SASA_BAD_INPUTS_MODE", "fork")
# A bad input must be answered within seconds of import; a case still running after this is a hang.
TIMEOUT_S = float(os.environ.get("SASA_BAD_INPUTS_TIMEOUT", "300"))  # a hang detector, generous for a loaded machine
IMPORT_ALLOWANCE_S = 90.0  # subprocess mode only: a cold import on a loaded 2-core machine
MAX_LINES = 50  # stdout + stderr of one bad input
TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Result:
    returncode: int | None  # None: killed after the time limit
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def lines(self) -> int:
        return len(self.output.splitlines())


def base_env(hf_home: Path) -> dict[str, str]:
    """The environment of every case: offline Hub, no progress bars, the Hugging Face cache in ``hf_home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPTUNA_", "SASA_BACKEND",
                                                                              "TRITON_", "TORCHINDUCTOR_"))}
    env.update({
        "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home),
        "HF_DATASETS_CACHE": str(hf_home / "datasets"), "PYTHONPATH": str(REPO), "COLUMNS": "120",
    })
    return env


class Runner:
    """Runs commands; one per test session (the fork server is started on first use)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._server: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_tests.forkserver"], cwd=REPO, env=self.env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        assert server.stdout is not None
        ready = server.stdout.readline()
        if not ready:
            raise RuntimeError("the fork server exited before it was ready (see the captured stderr)")
        return server

    def run(self, module: str, argv: list[str], *, cwd: Path, timeout: float = TIMEOUT_S,
            env: dict[str, str] | None = None, logs: Path | None = None, unset: tuple[str, ...] = ()) -> Result:
        """``python -m MODULE ARGV`` in ``cwd``; ``env`` adds variables to the case's environment, ``unset``
        removes some.

        stdout and stderr go to ``LOGS.stdout`` and ``LOGS.stderr`` (default: ``cwd`` beside itself).
        """
        logs = logs if logs is not None else cwd
        out, err = logs.parent / f"{logs.name}.stdout", logs.parent / f"{logs.name}.stderr"
        if MODE == "subprocess":
            code, timed_out, seconds = self._subprocess(module, argv, cwd, out, err, timeout + IMPORT_ALLOWANCE_S,
                                                        env or {}, unset)
        else:
            if self._server is None or self._server.poll() is not None:
                self._server = self._start()
            request = {"module": module, "argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err),
                       "timeout": timeout, "env": env or {}, "unset": list(unset)}
            stdin: IO[str] = self._server.stdin  # type: ignore[assignment]
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
            answer = json.loads(self._server.stdout.readline())  # type: ignore[union-attr]
            code, timed_out, seconds = answer["returncode"], answer["timed_out"], answer["seconds"]
        return Result(code, timed_out, _read(out), _read(err), seconds)

    def _subprocess(self, module: str, argv: list[str], cwd: Path, out: Path, err: Path,
                    timeout: float, env: dict[str, str], unset: tuple[str, ...] = ()) -> tuple[int | None, bool, float]:
        import time

        started = time.monotonic()
        environment = {k: v for k, v in {**self.env, **env}.items() if k not in unset}
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=cwd, env=environment,
                                    stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True)
            try:
                code: int | None = proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code, timed_out = None, True
        return code, timed_out, round(time.monotonic() - started, 2)

    def close(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.stdin.close()  # type: ignore[union-attr]
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._server.pid, signal.SIGKILL)
                self._server.wait()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


# --- side effects ----------------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``roots`` → (is a directory, size, mtime in ns); symlinks are recorded, not followed."""
    found: dict[str, tuple[bool, int, int]] = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        for path in [root, *root.rglob("*")]:
            info = path.lstat()
            is_dir = path.is_dir() and not path.is_symlink()
            found[str(path)] = (is_dir, 0 if is_dir else info.st_size, 0 if is_dir else info.st_mtime_ns)
    return found


SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def changes(before: dict[str, tuple[bool, int, int]], after: dict[str, tuple[bool, int, int]]) -> list[str]:
    """Created, removed and modified paths, shortest first (a new folder before what is in it).

    SQLite files that existed before are compared by their rows (:func:`store_dump`), not here: opening a store
    at all (to read a stored spec, say) checkpoints its write-ahead log, which rewrites the file and removes
    its ``-wal``/``-shm`` files without changing a row. A store file that did not exist before still counts.
    """
    def sqlite_churn(path: str) -> bool:
        base = next((path[: -len(s)] for s in SQLITE_SIDECARS if path.endswith(s)), path)
        return base.endswith(".db") and base in before

    created = [f"+{p}" for p in after if p not in before and not sqlite_churn(p)]
    removed = [f"-{p}" for p in before if p not in after and not sqlite_churn(p)]
    modified = [f"~{p}" for p in after if p in before and after[p] != before[p] and not sqlite_churn(p)]
    return sorted(created + removed + modified, key=len)


def store_dump(path: Path) -> str:
    """A digest of every row of a SQLite file ("" if absent), its write-ahead log included.

    The file is read from a copy (with its ``-wal``), so reading it changes nothing in the folder under test.
    """
    if not path.is_file():
        return ""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / path.name
        for suffix in ("", "-wal"):
            if Path(f"{path}{suffix}").is_file():
                shutil.copy2(f"{path}{suffix}", f"{copy}{suffix}")
        with closing(sqlite3.connect(copy)) as connection:
            text = "\n".join(connection.iterdump())
    return hashlib.sha256(text.encode()).hexdigest()


def judge(result: Result, *, expect_exit: int, names: tuple[str, ...], forbid: tuple[str, ...] = (),
          created: list[str], max_lines: int = MAX_LINES) -> list[str]:
    """Every way the command fell short of the bad-input contract (empty: it met it)."""
    if result.timed_out:
        return [f"hang (killed after {result.seconds:.0f} s)"] + ([f"files created: {created[:3]}"] if created
                                                                  else [])
    found: list[str] = []
    if TRACEBACK in result.output:
        last = [line for line in result.output.splitlines() if line.strip()][-1:]
        found.append(f"traceback ({last[0][:160] if last else ''})")
    if result.returncode != expect_exit:
        found.append(f"wrong exit ({result.returncode}, expected {expect_exit})")
    if created:
        found.append(f"files created/modified ({len(created)}): {created[:3]}")
    if result.lines > max_lines:
        found.append(f"unbounded output ({result.lines} lines)")
    missing = [n for n in names if n not in result.stderr]
    if missing and result.returncode != 0:
        found.append(f"message lacks {missing}: {_first_error(result.stderr)!r}")
    elif missing:
        found.append(f"stderr lacks {missing}")
    leaked = [f for f in forbid if f in result.output]
    if leaked:
        found.append(f"output shows {leaked}")
    return found


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return " | ".join(lines[:2])[:240]


def record(path: str | None, row: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` (the case table for the report), when a path is given."""
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
