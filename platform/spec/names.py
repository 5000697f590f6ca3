"""The study-name rule shared by the spec (``name``), ``platform.promote`` and ``dashboards``.

A study name becomes part of paths (MLflow artifact location, ``runs/trials/<name>``, ``runs/reports/<name>``),
an MLflow experiment name and a registered-model name, so it is checked as a string — before any filesystem
access: ``.``/``..``, separators and names longer than a file name allows are refused.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 100
NAME_RULE = (f"1 to {MAX_NAME_LENGTH} characters: letters, digits, '_', '.' and '-', starting with a letter or "
             "a digit")
_NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME_LENGTH - 1}}}")


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid study name (None when it is)."""
    if not isinstance(name, str):
        return f"expected a string; got {type(name).__name__}"
    if _NAME_RE.fullmatch(name):
        return None
    shown = repr(name) if len(name) <= 40 else f"{name[:20]!r}... ({len(name)} characters)"
    return f"{shown} is not a valid study name; use {NAME_RULE}"


def is_study_name(text: str) -> bool:
    return name_problem(text) is None
