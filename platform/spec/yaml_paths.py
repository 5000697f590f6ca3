"""YAML paths for spec problems: loading YAML, ``--set`` overrides and pydantic errors as ``path: problem``.

Every problem the spec layer reports is a ``(path, message)`` pair, rendered as ``<yaml path>: <problem>;
<what is valid>``.  Paths join mapping keys with ``.`` and list indices as ``[i]`` (``search.parameters.
window_size.choices[1]``).  Validators that find several problems at once raise :class:`ProblemsError`, whose
paths are relative to the validated object; :func:`format_errors` makes them absolute.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import SpecError
from .reader import read_yaml_text

Problem = tuple[str, str]
DETAILED_PROBLEMS = 50  # problems past this many get short messages (no "did you mean" search)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
# Free-form mapping keys (search parameter names) may themselves be dotted paths into these sections.
_DOTTED_PARAM_ROOTS = ("model", "train")


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


# --- YAML ------------------------------------------------------------------------------------------------


def load_yaml(text: str, source: str | None = None) -> Any:
    """YAML text through the shared safe reader (:mod:`.reader`); raises ``SpecError``."""
    return read_yaml_text(text, source)


# --- walking the pydantic schema -------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
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


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _step(node: Any, part: str | int) -> Any:
    """The annotation one path element below ``node`` (a model, dict or list annotation), or None."""
    node = _unwrap(node)
    if _is_model(node):
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
        node = _step(node, part)
        if node is None:
            return None
    node = _unwrap(node)
    return node if _is_model(node) else None


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


# --- --set overrides -------------------------------------------------------------------------------------


def _override_path(root: type[BaseModel], parts: list[str]) -> tuple[list[str], str | None]:
    """Map ``a.b.c`` onto the schema: the raw-dict keys to walk, or a problem message."""
    node: Any = root
    keys: list[str] = []
    i = 0
    while i < len(parts):
        current = _unwrap(node)
        if _is_model(current):
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
        node = _step(current, name)
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
