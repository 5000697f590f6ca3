"""Real servers on loopback, started by the tests themselves: ``mlflow server``, ``mlflow models serve``,
``optuna-dashboard`` and a static file server; each waits until it answers and is stopped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.network import free_port

STARTUP_LIMIT_S = 600.0  # a hang detector: the first `mlflow server` start on a busy 2-core machine is slow


def wait_for_http(url: str, process: subprocess.Popen, log: Path, limit_s: float = STARTUP_LIMIT_S) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or never answers."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {limit_s:.0f} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def serve(cmd: list[str], url_path: str, port: int, log: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``cmd`` (a server on ``port``, output to ``log``) in its own process group until ``url_path`` answers
    200; yields the base URL and stops the server and its workers afterwards."""
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as handle:
        process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                   start_new_session=True)
        try:
            wait_for_http(base + url_path, process, log)
            yield base
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and the workers it spawned (its own process group, started above)."""
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=20)


@contextmanager
def mlflow_server(backend_store_uri: str, artifacts_dir: Path, log: Path) -> Iterator[str]:
    """A real ``mlflow server`` on a free loopback port over ``backend_store_uri``; yields its base URL."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", str(artifacts_dir),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    with serve(cmd, "/health", port, log) as base:
        yield base


@contextmanager
def static_server(directory: Path, log: Path) -> Iterator[str]:
    """``python -m http.server`` over ``directory`` on a free loopback port; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)]
    with serve(cmd, "/", port, log) as base:
        yield base


@contextmanager
def optuna_dashboard(storage_url: str, log: Path) -> Iterator[str]:
    """``optuna-dashboard`` (the dev extra's pinned version) over ``storage_url`` on a free loopback port."""
    script = Path(sys.executable).with_name("optuna-dashboard")
    if not script.is_file():
        raise RuntimeError(f"{script} not found: install the dev extra (`pip install -e .[dev]`, optuna-dashboard)")
    port = free_port()
    cmd = [str(script), storage_url, "--host", "127.0.0.1", "--port", str(port), "--server", "wsgiref"]
    with serve(cmd, "/api/meta", port, log) as base:
        yield base


@contextmanager
def model_server(model_uri: str, tracking_uri: str, log: Path) -> Iterator[str]:
    """``mlflow models serve -m MODEL_URI --env-manager local`` on a free loopback port; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # The server execs `uvicorn` by name: the environment's scripts folder must be on PATH (an activated venv).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    with serve(cmd, "/ping", port, log, cwd=log.parent, env=env) as base:
        yield base
