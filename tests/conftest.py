"""Test tiers: ``slow`` marks a test that starts a study, a server, a browser, or trains for more than a few seconds.

``make test-fast`` runs ``-m "not slow"``; ``make test`` (what CI runs) runs everything. Markers are registered in
pyproject.toml and checked with ``--strict-markers``. So that the fast tier stays what it says, a run that leaves
out ``slow`` refuses — in the test that does it — any process that would start a study or a server or a browser:
a test that needs one must carry the marker.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# What a fast test may not start: programs (by file name) and Python modules (``-m``)
HEAVY_PROGRAMS = frozenset({"mlflow", "postgres", "pg_ctl", "initdb", "chromium", "chromedriver", "optuna-dashboard",
                            "gunicorn", "uvicorn"})
HEAVY_MODULES = ("platform.study", "platform.promote", "mlflow", "tests.cli_tests.forkserver", "optuna_dashboard")


def fast_tier(config: pytest.Config) -> bool:
    """Is this run the fast tier (a marker expression that leaves ``slow`` out)?"""
    expression = (config.getoption("markexpr", "") or "").replace(" ", "")
    return "notslow" in expression


def heavy_command(args: Any) -> str | None:
    """What in a command line starts a study, a server or a browser (None: nothing heavy)."""
    words = str(args).split() if isinstance(args, str | bytes | Path) else [str(a) for a in args]
    if words and Path(words[0]).name in HEAVY_PROGRAMS:
        return words[0]
    for flag, module in itertools.pairwise(words):
        if flag == "-m" and module.startswith(HEAVY_MODULES):
            return f"-m {module}"
    return None


@contextlib.contextmanager
def refusing_heavy_processes() -> Iterator[None]:
    """Within: starting a study, a server or a browser raises AssertionError before the process exists."""
    original = subprocess.Popen.__init__

    def refuse(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
        heavy = heavy_command(args)
        if heavy is not None:
            raise AssertionError(f"a test of the fast tier starts {heavy!r}: mark it @pytest.mark.slow "
                                 "(tests/conftest.py)")
        original(self, args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse)
        yield


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_starts_nothing_heavy(request: pytest.FixtureRequest) -> Iterator[None]:
    """In the fast tier (only unmarked tests are collected), a heavy process fails the test or fixture starting it."""
    if not fast_tier(request.config):
        yield
        return
    with refusing_heavy_processes():
        yield
