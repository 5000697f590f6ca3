"""A process that imports the three commands once and runs each test case in a fresh fork of itself.

``python -m platform.study`` spends 10–25 s importing torch, Lightning, Optuna and MLflow before it reads its
first argument; a hundred bad-input cases as plain subprocesses would take half an hour. This server pays the
import once, then, per request (one JSON line on stdin), forks a child that behaves like
``python -m MODULE ARGS`` started in the case's folder: its own session (so a hang is killed with everything it
started), stdin from /dev/null, stdout/stderr to files, ``sys.argv`` set, the module run as ``__main__`` by
:mod:`runpy`, an uncaught exception printed as the interpreter prints it (``Traceback ...``, exit 1), and a normal
interpreter exit (``atexit`` handlers run, as they would; see :func:`_exit`). The answer (one JSON line on stdout)
holds the exit code, or ``null`` with ``timed_out`` when the child outlived its time limit and was killed.

Run from the repository root: ``python -m tests.cli_tests.forkserver``. ``SASA_BAD_INPUTS_MODE=subprocess``
makes the tests skip this server and start every case as a real ``python -m`` process instead (slow, exact).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import resource
import runpy
import signal
import sys
import time
import traceback
from typing import Any

MODULES = ("platform.study", "platform.promote", "dashboards")
POLL_S = 0.05
MEMORY_HEADROOM = int(float(os.environ.get("SASA_BAD_INPUTS_MEMORY_GB", "4")) * 2**30)


def _cap_memory(extra: int) -> None:
    """Let the child map at most ``extra`` bytes beyond what the warm server already has.

    A bad input must never need gigabytes; without a cap, a case that expands a YAML alias bomb would take the
    shared machine's memory before its time limit ends. Exceeding the cap raises ``MemoryError`` in the child.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _child(request: dict[str, Any]) -> int:
    """In the forked child: become ``python -m MODULE ARGS`` and return its exit code."""
    os.setsid()
    _cap_memory(MEMORY_HEADROOM)
    os.chdir(request["cwd"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        handle = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    for name in request.get("unset", ()):  # the caller's environment lacks what the server started with
        os.environ.pop(name, None)
    os.environ.update(request.get("env", {}))
    module = request["module"]
    sys.argv = [module, *request["argv"]]
    # ``python -m`` runs a module that is not imported yet; runpy warns (on stderr) about one that is.
    for name in (module, f"{module}.__main__"):  # a module, or a package run through its __main__
        if name != "dashboards":  # a package's own __init__ stays imported, as with ``python -m``
            sys.modules.pop(name, None)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        code = 1
    return code


def _exit(code: Any) -> None:
    """Leave the child as the interpreter would after ``sys.exit(code)``, minus the module teardown.

    ``atexit`` handlers run (they may write to the stores), a garbage collection closes what the command left
    open (as the interpreter's final collection does), and ``SystemExit`` codes map as usual (None → 0, a
    message → printed, 1). The rest of the interpreter's teardown is skipped: it writes nothing, and in a fork of
    this large process it spends ~8 s in native code.
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        atexit._run_exitfuncs()
        gc.collect()  # closes unreachable SQLite connections, which checkpoints and removes their -wal files
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code & 0xFF)


def _wait(pid: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": False}
        time.sleep(POLL_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the child leads its own session: workers it started go too
    os.waitpid(pid, 0)
    return {"returncode": None, "timed_out": True}


def serve() -> None:
    # Import every command once: the children start from this warm state.
    import dashboards.__main__  # noqa: F401
    import platform.promote
    import platform.study  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["module"] not in MODULES:
            print(json.dumps({"error": f"unknown module {request['module']!r}"}), flush=True)
            continue
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _exit(_child(request))
        answer = _wait(pid, float(request["timeout"]))
        answer["seconds"] = round(time.monotonic() - started, 2)
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
