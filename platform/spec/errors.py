"""Errors raised for bad study specs, and how every spec problem is written.

A :class:`SpecError` gathers *every* problem found in a spec, one line each, formatted as
``<yaml path>: <problem>; <what is valid>`` so a user can fix them all in one pass.

Every problem the spec layer reports is a ``(path, message)`` pair (:data:`Problem`).  Paths join mapping keys with
``.`` and list indices as ``[i]`` (``search.parameters.window_size.choices[1]``).  Validators that find several
problems at once raise :class:`ProblemsError`, whose paths are relative to the validated object;
:func:`format_errors` turns pydantic's errors into absolute ``(path, message)`` pairs.  This module imports nothing
else of the spec package: every other spec module builds on it.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

MAX_SHOWN = 20  # problems printed; the rest are counted ("... and 399,990 more unknown keys")
MAX_LINE = 400  # characters of one problem line
Problem = tuple[str, str]
DETAILED_PROBLEMS = 50  # problems past this many get short messages (no "did you mean" search)


def _clip(line: str) -> str:
    line = " ".join(line.splitlines())
    return line if len(line) <= MAX_LINE else f"{line[:MAX_LINE - 3]}..."


def _more(rest: list[str]) -> str:
    unknown = sum(1 for line in rest if "unknown key" in line)
    if unknown == len(rest):
        return f"… and {len(rest):,} more unknown keys"
    return f"… and {len(rest):,} more problems" + (f" ({unknown:,} unknown keys)" if unknown else "")


class SpecError(ValueError):
    """A study spec (file, ``--set`` overrides or mapping) is invalid.

    ``problems`` holds one line per problem; ``str()`` prefixes them with the spec's source (the file).
    It subclasses :class:`ValueError`, so callers that treat bad input generically still catch it.
    """

    def __init__(self, problems: str | Iterable[str], source: str | Path | None = None) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        self.source: str | None = None if source is None else str(source)
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        head = f"{self.source}: {count:,} {noun}" if self.source else f"invalid study spec: {count:,} {noun}"
        shown = self.problems if count <= MAX_SHOWN + 1 else self.problems[:MAX_SHOWN]
        lines = [head, *(f"  {_clip(line)}" for line in shown)]
        if len(shown) < count:
            lines.append(f"  {_more(self.problems[MAX_SHOWN:])}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._render()


# --- problems ---------------------------------------------------------------------------------------------


class ProblemsError(ValueError):
    """Several problems found by one validator; each path is relative to the object it validated."""

    def __init__(self, items: Iterable[Problem]) -> None:
        self.items: list[Problem] = list(items)
        super().__init__("; ".join(render(path, msg) for path, msg in self.items))


def join(*parts: str | int) -> str:
    """``join("search", "parameters", "heads", "choices", 1)`` -> ``search.parameters.heads.choices[1]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out = f"{out}.{part}" if out and not str(part).startswith("[") else f"{out}{part}"
    return out


def render(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def did_you_mean(word: object, options: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string."""
    matches = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.5)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def show(value: object) -> str:
    """A value as a user wrote it in YAML, with its type where that helps."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):  # never repr a container: an alias bomb expands to 10**9 items
        return f"a list of {len(value)} items" if value else "an empty list"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def raise_problems(problems: list[Problem]) -> None:
    if problems:
        raise ProblemsError(problems)


# --- walking the pydantic schema -------------------------------------------------------------------------


def unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the one type that matters for walking."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def child_annotation(node: Any, part: str | int) -> Any:
    """The annotation one path element below ``node`` (a model, dict or list annotation), or None."""
    node = unwrap(node)
    if is_model(node):
        field = node.model_fields.get(part) if isinstance(part, str) else None
        return None if field is None else field.annotation
    origin, args = get_origin(node), get_args(node)
    if origin is dict and args:
        return args[1]
    if origin is list and args and isinstance(part, int):
        return args[0]
    return None


def model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class found by walking ``loc`` down from ``root`` (None if it does not lead to one)."""
    node: Any = root
    for part in loc:
        node = child_annotation(node, part)
        if node is None:
            return None
    node = unwrap(node)
    return node if is_model(node) else None


# --- pydantic errors -------------------------------------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_COMPARE = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", "≥"), "less_than": ("lt", "<"),
            "less_than_equal": ("le", "≤")}


def _error_lines(error: Any, root: type[BaseModel], prefix: Sequence[str | int]) -> Iterator[Problem]:
    loc = (*prefix, *error["loc"])
    path, kind, value = join(*loc), error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        exc = ctx.get("error")
        if isinstance(exc, ProblemsError):
            for sub, message in exc.items:
                yield join(path, sub), message
        else:
            yield path, str(exc) if exc is not None else error["msg"]
    elif kind == "extra_forbidden":
        model = model_at(root, error["loc"][:-1])
        valid = list(model.model_fields) if model is not None else []
        hint = did_you_mean(loc[-1], valid).strip(" ()")
        yield path, f"unknown key; {hint}" if hint else f"unknown key; valid keys: {', '.join(valid)}"
    elif kind == "missing":
        yield path, "required key is missing"
    elif kind == "literal_error":
        valid = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        yield path, f"{show(value)} is not valid{did_you_mean(value, valid)}; choose one of {', '.join(valid)}"
    elif kind in _EXPECTED:
        yield path, f"expected {_EXPECTED[kind]}; got {show(value)}"
    elif kind in _COMPARE:
        key, sign = _COMPARE[kind]
        yield path, f"must be {sign} {ctx.get(key)}; got {show(value)}"
    else:
        message = str(error["msg"])
        yield path, f"{message[:1].lower()}{message[1:]}; got {show(value)}"


def format_errors(
    err: ValidationError | Iterable[Any], root: type[BaseModel], prefix: Sequence[str | int] = ()
) -> list[Problem]:
    """Every error in ``err`` (or in a list of its ``errors()``) as ``(path, message)``.

    ``root`` is the model that was validated; ``prefix`` is prepended to every path.
    """
    errors = err.errors() if isinstance(err, ValidationError) else err
    out: list[Problem] = []
    for error in errors:
        if len(out) >= DETAILED_PROBLEMS and error["type"] == "extra_forbidden":  # no hints for 400k typos
            out.append((join(*prefix, *error["loc"]), "unknown key"))
        else:
            out.extend(_error_lines(error, root, prefix))
    return out
