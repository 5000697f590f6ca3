"""Fixtures of the ``sasa`` tests: the backend switches of the environment cleared, so each test chooses."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``SASA_BACKEND`` choice and no ``TRITON_INTERPRET`` from the caller's shell reach the test."""
    monkeypatch.delenv("SASA_BACKEND", raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
