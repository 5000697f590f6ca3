"""The fast tier's guard (tests/conftest.py): what counts as starting a study, a server or a browser."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import heavy_command, refusing_heavy_processes


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "platform.study", "studies/window_size.yaml"],
    ["python", "-m", "platform.promote", "window_size"],
    [sys.executable, "-m", "mlflow", "server", "--port", "5000"],
    ["/usr/lib/postgresql/15/bin/pg_ctl", "start"],
    ["/usr/bin/chromium", "--headless"],
    ["optuna-dashboard", "sqlite:///runs/optuna.db"],
    "mlflow ui --port 5000",
])
def test_heavy_commands_are_recognised(command: list[str] | str) -> None:
    assert heavy_command(command) is not None


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "dashboards", "--tracking-uri", "sqlite:///runs/mlflow.db"],  # a path is not a program
    ["git", "rev-parse", "HEAD"],
    [sys.executable, "-c", "print('platform.study')"],
    "ls -la",
])
def test_light_commands_pass(command: list[str] | str) -> None:
    assert heavy_command(command) is None


def test_the_guard_refuses_a_heavy_process_and_lets_a_light_one_run() -> None:
    """What the fast tier runs under: a study refused before its process exists, a plain command run."""
    with refusing_heavy_processes():
        with pytest.raises(AssertionError, match=r"mark it @pytest\.mark\.slow"):
            subprocess.Popen([sys.executable, "-m", "platform.study", "--help"])
        light = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True, check=True)
    assert light.stdout == "ok\n"
