"""A researcher's own Python module, written by a test and importable for its duration only."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest


def write_user_module(source: str, *, prefix: str, where: Path, monkeypatch: pytest.MonkeyPatch,
                request: pytest.FixtureRequest) -> str:
    """Write ``source`` as a module named after ``prefix`` and the test (unique), put ``where`` on ``sys.path``
    for the test; returns the module's name (nothing of it stays imported afterwards)."""
    name = re.sub(r"\W", "_", f"{prefix}_{request.node.name}")
    (where / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(where))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name
