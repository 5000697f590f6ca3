"""Type checks for the arguments of the public Python API (``sasa_lab.run_study``, ``promote``, …).

A wrong type must be refused at the call, naming the argument, what it got and what is valid — not surface later
as an ``AttributeError`` deep inside (a string where a list of files was meant is iterated letter by letter).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _got(value: Any) -> str:
    text = repr(value)
    return f"{text[:80]}…" if len(text) > 80 else text


def require(name: str, value: Any, types: type | tuple[type, ...], what: str, *, optional: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is one of ``types`` (``bool`` is never an ``int`` here)."""
    if optional and value is None:
        return
    wanted = types if isinstance(types, tuple) else (types,)
    ok = not (isinstance(value, bool) and bool not in wanted) and isinstance(value, wanted)
    if not ok:
        suffix = " or None" if optional else ""
        raise TypeError(f"{name}={_got(value)} ({type(value).__name__}) is not valid; give {what}{suffix}")


def path_arg(name: str, value: Any, *, optional: bool = False) -> Path | None:
    """A ``str`` or ``os.PathLike`` as a ``Path`` (None when optional and absent)."""
    require(name, value, (str, os.PathLike), "a path (str or pathlib.Path)", optional=optional)
    return None if value is None else Path(value)


def paths_arg(name: str, value: Any) -> tuple[Path, ...]:
    """A list or tuple of paths (a single path is a mistake worth naming: it would be read letter by letter)."""
    if isinstance(value, str | os.PathLike):
        raise TypeError(f"{name}={_got(value)} is one path; give a list of paths, e.g. {name}=[{_got(str(value))}]")
    require(name, value, (list, tuple), "a list of paths (str or pathlib.Path)")
    for i, item in enumerate(value):
        require(f"{name}[{i}]", item, (str, os.PathLike), "a path (str or pathlib.Path)")
    return tuple(Path(item) for item in value)


def strings_arg(name: str, value: Sequence[Any]) -> tuple[str, ...]:
    """Each item a ``str`` (``--set`` overrides, ``dotted.key=value``)."""
    for i, item in enumerate(value):
        if isinstance(item, list | tuple):
            raise TypeError(f"{name}[{i}]={_got(item)} is a list; pass each override as its own string "
                            "argument, e.g. run_study(spec, *overrides)")
        require(f"{name}[{i}]", item, str, "a 'dotted.key=value' string")
    return tuple(value)
