"""Real servers on loopback for browser tests: ``mlflow server``, a static file server, headless Chromium.

Chromium comes from the system (Debian: ``apt-get install -y chromium chromium-driver``) and is driven through
its matching chromedriver with Selenium (``pip install selenium==4.51.0``); nothing is downloaded at test time.
A missing browser is an error, never a skip: the "seen as a person sees it" check must not silently vanish.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "install the browser and its driver with `apt-get install -y chromium chromium-driver` (Debian/Ubuntu) and "
    "Selenium with `pip install selenium==4.51.0` (the dev extra), or set CHROMIUM / CHROMEDRIVER to their paths"
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
)
STARTUP_LIMIT_S = 180.0  # generous: the first `mlflow server` start on a busy 2-core machine is slow


class BrowserMissingError(RuntimeError):
    """Chromium, chromedriver or Selenium is not installed (the test fails with how to install them)."""


def _first_existing(env: str, *candidates: str) -> str | None:
    for path in (os.environ.get(env), *candidates):
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


def browser_paths() -> tuple[str, str]:
    """(chromium binary, chromedriver binary); raises :class:`BrowserMissingError` saying how to install."""
    chromium = _first_existing("CHROMIUM", "/usr/bin/chromium", "/usr/bin/chromium-browser",
                               shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
    driver = _first_existing("CHROMEDRIVER", "/usr/bin/chromedriver", shutil.which("chromedriver") or "")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if path is None]
    if missing:
        raise BrowserMissingError(f"{' and '.join(missing)} not found; {INSTALL_HINT}")
    try:
        import selenium  # noqa: F401
    except ImportError as exc:
        raise BrowserMissingError(f"the selenium package is not installed; {INSTALL_HINT}") from exc
    return chromium, driver  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
def _serve(cmd: list[str], url_path: str, port: int, log: Path, cwd: Path | None = None,
           env: dict[str, str] | None = None) -> Iterator[str]:
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
    with _serve(cmd, "/health", port, log) as base:
        yield base


@contextmanager
def static_server(directory: Path, log: Path) -> Iterator[str]:
    """``python -m http.server`` over ``directory`` on a free loopback port; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)]
    with _serve(cmd, "/", port, log) as base:
        yield base


@contextmanager
def chromium(user_data_dir: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium through the system chromedriver, browser console logged."""
    binary, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(120)
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """Browser console entries at level SEVERE since the last call (errors, uncaught exceptions, failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def wait_for_text(driver: Any, texts: list[str], limit_s: float = 90.0) -> str:
    """Wait until every string in ``texts`` is in the page's visible text; returns that text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def seen(drv: Any) -> str | bool:
        body = drv.find_element(By.TAG_NAME, "body").text
        return body if all(t in body for t in texts) else False

    try:
        return WebDriverWait(driver, limit_s, poll_frequency=0.5).until(seen)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        missing = [t for t in texts if t not in body]
        raise AssertionError(f"not shown after {limit_s:.0f} s: {missing}\npage text:\n{body[:3000]}") from None


@contextmanager
def optuna_dashboard(storage_url: str, log: Path) -> Iterator[str]:
    """``optuna-dashboard`` (the dev extra's pinned version) over ``storage_url`` on a free loopback port."""
    script = Path(sys.executable).with_name("optuna-dashboard")
    if not script.is_file():
        raise RuntimeError(f"{script} not found: install the dev extra (`pip install -e .[dev]`, optuna-dashboard)")
    port = free_port()
    cmd = [str(script), storage_url, "--host", "127.0.0.1", "--port", str(port), "--server", "wsgiref"]
    with _serve(cmd, "/api/meta", port, log) as base:
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
    with _serve(cmd, "/ping", port, log, cwd=log.parent, env=env) as base:
        yield base
