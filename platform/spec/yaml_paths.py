"""``--set`` overrides and YAML values for the spec: ``dotted.key=value`` applied to the raw mapping, checked
against the pydantic schema, every failure a ``path: problem`` line.

The problem basics (:data:`Problem`, :class:`ProblemsError`, :func:`join`, :func:`render`, :func:`show`,
:func:`did_you_mean`, :func:`format_errors`, :func:`model_at`) live in :mod:`.errors`, below this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, get_origin

from pydantic import BaseModel

from .errors import (
    SpecError,
    child_annotation,
    did_you_mean,
    is_model,
    join,
    unwrap,
)
from .reader import read_yaml_text

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
# Free-form mapping keys (search parameter names) may themselves be dotted paths into these sections.
_DOTTED_PARAM_ROOTS = ("model", "train")


# --- YAML ------------------------------------------------------------------------------------------------


def load_yaml(text: str, source: str | None = None) -> Any:
    """YAML text through the shared safe reader (:mod:`.reader`); raises ``SpecError``."""
    return read_yaml_text(text, source)


# --- --set overrides -------------------------------------------------------------------------------------


def _override_path(root: type[BaseModel], parts: list[str]) -> tuple[list[str], str | None]:
    """Map ``a.b.c`` onto the schema: the raw-dict keys to walk, or a problem message."""
    node: Any = root
    keys: list[str] = []
    i = 0
    while i < len(parts):
        current = unwrap(node)
        if is_model(current):
            name = parts[i]
            if name not in current.model_fields:
                where = f"'{join(*keys)}'" if keys else "the top level"
                valid = list(current.model_fields)
                hint = did_you_mean(name, valid).strip(" ()")
                return keys, f"unknown key '{name}' in {where}; " + (hint or f"valid keys: {', '.join(valid)}")
            i += 1
        elif get_origin(current) is dict:
            # A free-form key; search parameter names may be dotted (``model.kernel_size``).
            take = 2 if parts[i] in _DOTTED_PARAM_ROOTS and i + 1 < len(parts) else 1
            name = ".".join(parts[i : i + take])
            i += take
        else:
            return keys, f"'{join(*keys)}' holds a single value, not a mapping; set '{join(*keys)}' itself"
        node = child_annotation(current, name)
        keys.append(name)
    return keys, None


def _assign(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    node = raw
    for key in keys[:-1]:
        child = node.get(key)
        if isinstance(child, list):  # a shorthand categorical parameter becomes its mapping form
            child = {"type": "categorical", "choices": child}
        if not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    node[keys[-1]] = value


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str], root: type[BaseModel]) -> list[str]:
    """Apply ``dotted.key=value`` overrides to ``raw`` in place; return the problems (one line each)."""
    problems: list[str] = []
    for text in overrides:
        key, sep, value_text = text.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.fullmatch(key):
            problems.append(f"--set {text[:80]}: expected dotted.key=value (e.g. --set train.lr=0.05)")
            continue
        shown = text if len(text) <= 80 else f"{text[:77]}..."
        try:
            value = load_yaml(value_text)
        except SpecError as exc:
            problems.append(f"--set {shown}: the value is not valid YAML: {exc.problems[0]}")
            continue
        keys, problem = _override_path(root, key.split("."))
        if problem is not None:
            problems.append(f"--set {shown}: {problem}")
            continue
        _assign(raw, keys, value)
    return problems
