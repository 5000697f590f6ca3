"""Faults the outage tests inject with real servers: an ``mlflow server`` stopped and started again on the same port,
and a small proxy that answers 503 for a while. Both wait for events (a server answering), never fixed delays."""

from __future__ import annotations

import http.client
import http.server
import os
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient

from tests.scale_tests.postgres import PostgresServer, as_postgres
from tests.support.network import free_port
from tests.support.servers import serve

EVENT_LIMIT_S = 600.0
POLL_S = 0.3  # how often wait_until looks (a poll interval: what it waits for is the event)


class RestartableMlflow:
    """A real ``mlflow server`` over a SQLite store on one loopback port, stoppable and startable again."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.port = root, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._running: object | None = None
        self.starts = 0

    def _cmd(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1"]

    def start(self) -> None:
        self.starts += 1
        context = serve(self._cmd(), "/health", self.port, self.root / f"server-{self.starts}.log")
        context.__enter__()
        self._running = context

    def stop(self) -> None:
        context, self._running = self._running, None
        if context is not None:
            context.__exit__(None, None, None)  # type: ignore[attr-defined]


@contextmanager
def restartable_mlflow(root: Path) -> Iterator[RestartableMlflow]:
    server = RestartableMlflow(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(found, *, what: str, alive=None, limit_s: float = EVENT_LIMIT_S):
    """Poll ``found()`` until it returns something truthy (that); fail when ``alive()`` turns False first."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise AssertionError(f"the study ended before {what}")
        try:
            result = found()
        except Exception:  # the store may not hold the study yet
            result = None
        if result:
            return result
        time.sleep(POLL_S)
    raise AssertionError(f"no {what} within {limit_s:.0f} s")


def first_epoch_logged(client: MlflowClient, experiment: str, metric: str) -> str | None:
    """The id of a trial run of ``experiment`` whose first epoch's ``metric`` is in the store (mid-trial)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    for run in client.search_runs([found.experiment_id], filter_string="attributes.status = 'RUNNING'"):
        if metric in run.data.metrics:
            return run.info.run_id
    return None


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the upstream tracking server, or answers 503 while ``failing`` is set."""

    upstream: tuple[str, int]
    failing: threading.Event
    refused: list[str]

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.failing.is_set():
            self.refused.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle  # noqa: N815 - http.server's method names

    def log_message(self, *args) -> None:  # quiet
        return


@contextmanager
def failing_proxy(upstream: str) -> Iterator[tuple[str, threading.Event, list[str]]]:
    """A loopback HTTP proxy to ``upstream`` (``http://host:port``); yields (its URL, the event that makes it answer
    503 while set, the paths it refused)."""
    host, port = upstream.removeprefix("http://").split(":")
    failing, refused = threading.Event(), []
    handler = type("Handler", (_Proxy,), {"upstream": (host, int(port)), "failing": failing, "refused": refused})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", failing, refused
    finally:
        server.shutdown()
        server.server_close()


def restart_postgres(server: PostgresServer) -> None:
    """``pg_ctl restart -m fast``: every connection is dropped, the server is back when the command returns."""
    data, log = server.root / "data", server.root / "server.log"
    subprocess.run(as_postgres([str(server.bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-m", "fast", "-w",
                                "restart"]), check=True, capture_output=True, timeout=EVENT_LIMIT_S)


@contextmanager
def small_filesystem(where: Path, size_mib: int) -> Iterator[Path]:
    """A tmpfs of ``size_mib`` MiB mounted at ``where`` (needs root, as CI runs); unmounted afterwards."""
    if os.geteuid() != 0:
        raise RuntimeError("the full-disk test mounts a tmpfs: run it as root (CI does)")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(filesystem: Path) -> Path:
    """Fill ``filesystem`` to the last byte with one file; returns it (delete it to free the space)."""
    filler = filesystem / "filler.bin"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass
    return filler
