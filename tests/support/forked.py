"""A command run through the fork server of ``tests/cli_tests`` instead of a fresh interpreter.

``python -m platform.study`` spends 10–25 s importing torch, Lightning, Optuna and MLflow before it reads its
first argument, and several more seconds in the interpreter's teardown. A test that checks what a command did
(its exit code, its lines, the stores it left) and not how a process starts or dies can run the command in a
fork of one warm process instead: :mod:`tests.cli_tests.forkserver` behaves like ``python -m MODULE ARGS`` (own
session, ``sys.argv``, ``runpy``, exit codes, ``atexit``), paying the imports once per test session.

Tests about the process itself — Ctrl-C, SIGKILL, what a fresh interpreter imports, an installed entry point, a
researcher's module on ``PYTHONPATH`` (read at interpreter start), multi-process workers — keep a real
subprocess. ``SASA_BAD_INPUTS_MODE=subprocess`` turns this route into real subprocesses too (slow, exact).
"""

from __future__ import annotations

import atexit
import subprocess
import tempfile
from pathlib import Path

from tests.cli_tests.harness import Runner
from tests.support.limits import HANG_S

# A study trains in the child: more room than a bad input gets (the server's limit on a child's address space).
STUDY_MEMORY_GB = "16"
MEMORY_VARIABLE = "SASA_BAD_INPUTS_MEMORY_GB"

_server: Runner | None = None


def _runner(env: dict[str, str]) -> Runner:
    """The session's one fork server, started on first use with ``env`` (what its imports read)."""
    global _server
    if _server is None:
        _server = Runner({**env, MEMORY_VARIABLE: STUDY_MEMORY_GB})
        atexit.register(_server.close)
    return _server


def run_forked(module: str, argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = HANG_S,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGV`` in ``cwd`` with environment ``env`` plus ``extra_env``, returned as
    :func:`subprocess.run` with ``capture_output=True, text=True`` would return it. The child's ``os.environ``
    is exactly that; what was read at import time is what the server read when it started (the first call's
    ``env``). Raises :class:`subprocess.TimeoutExpired` after ``timeout`` seconds (the command and everything it
    started killed)."""
    runner = _runner(env)
    wanted = {**env, **(extra_env or {})}
    started_with = {k: v for k, v in runner.env.items() if k != MEMORY_VARIABLE}
    changed = {k: v for k, v in wanted.items() if started_with.get(k) != v}
    unset = tuple(k for k in runner.env if k not in wanted)
    with tempfile.TemporaryDirectory(prefix="forked-") as scratch:
        result = runner.run(module, argv, cwd=cwd, timeout=timeout, env=changed, unset=unset,
                            logs=Path(scratch) / "command")
    args = ["python", "-m", module, *argv]
    if result.timed_out:
        raise subprocess.TimeoutExpired(args, timeout, output=result.stdout, stderr=result.stderr)
    assert result.returncode is not None
    return subprocess.CompletedProcess(args, result.returncode, result.stdout, result.stderr)
