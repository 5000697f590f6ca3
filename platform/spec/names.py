"""The study-name rule shared by the spec (``name``), ``platform.promote`` and ``dashboards``.

A study name becomes part of paths (MLflow artifact location, ``runs/trials/<name>``, ``runs/reports/<name>``),
an MLflow experiment name and a registered-model name, so it is checked as a string — before any filesystem
access: ``.``/``..``, separators and names longer than a file name allows are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_NAME_LENGTH = 100
NAME_RULE = (f"1 to {MAX_NAME_LENGTH} characters: letters, digits, '_', '.' and '-', starting with a letter or "
             "a digit")
ARCHIVE_ALLOWANCE = 40  # ``NAME.archived-<time>``: stored names may be this much longer
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MAX_PATH = 4096


def name_problem(name: object, *, stored: bool = False) -> str | None:
    """Why ``name`` is not a valid study name (None when it is); ``stored``: also an archived study's name."""
    if not isinstance(name, str):
        return f"expected a string; got {type(name).__name__}"
    longest = MAX_NAME_LENGTH + (ARCHIVE_ALLOWANCE if stored else 0)
    if len(name) <= longest and _NAME_RE.fullmatch(name):
        return None
    shown = repr(name) if len(name) <= 40 else f"{name[:20]!r}... ({len(name)} characters)"
    return f"{shown} is not a valid study name; use {NAME_RULE}"


def is_study_name(text: str) -> bool:
    return name_problem(text) is None


def study_target(text: str) -> str:
    """``"file"`` or ``"name"``: what a STUDY argument (promote, dashboards) is; raises ``ValueError``.

    The name rule is applied before any filesystem access, so a 500-character or ``..`` argument never
    reaches ``stat`` (ENAMETOOLONG) or a path join.
    """
    if text.endswith((".yaml", ".yml")):
        return "file"
    problem = name_problem(text, stored=True)
    if problem is None:
        return "file" if Path(text).is_file() else "name"
    if ("/" in text or "\\" in text) and len(text) < _MAX_PATH:
        try:
            if Path(text).is_file():
                return "file"
        except OSError:
            pass
    raise ValueError(f"STUDY {problem}, or a YAML file")
