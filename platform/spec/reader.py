"""The one safe way to read YAML given by a user: spec files, ``--set`` values, specs passed to promote/dashboards.

A user's YAML may be anything: not UTF-8, unreadable, huge, nested ten thousand deep, or a "billion laughs" alias
bomb (1 kB that expands to 10**9 values). :func:`read_yaml_file` and :func:`read_yaml_text` parse with libyaml
(``yaml.CSafeLoader``; the pure-Python loader takes seconds per 10k keys), check the composed node graph —
nesting depth and the number of values once aliases are expanded — *before* building Python objects, and raise
:class:`~.errors.SpecError` with one line per problem (``FILE: line L, column C: ...``) instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

MAX_FILE_BYTES = 2**20  # a spec is a few kB; larger files are refused unparsed (with their unknown top-level keys)
MAX_DEPTH = 64  # mappings/lists nested deeper than this are refused
MAX_NODES = 1_000_000  # values once YAML aliases are expanded (the whole document)
MAX_KEY_NODES = 100_000  # ... and under any one key (a bomb is reported at the keys that hold it)

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecLoader(_Base):  # type: ignore[misc, valid-type]
    """A safe loader that reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``) and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line with its (1-based) line and column."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "YAML"
    return f"{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")


def _where(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _graph_problems(root: yaml.Node) -> list[str]:
    """Depth and expanded size of the composed graph (iterative: a 10k-deep document must not recurse)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, expanded = stack.pop()
        if depth > MAX_DEPTH:
            return [f"{_where(node)}: nested deeper than {MAX_DEPTH} levels; a spec needs a handful"]
        if id(node) in sizes:
            continue
        kids = _children(node)
        if expanded or not kids:
            sizes[id(node)] = min(1 + sum(sizes[id(k)] for k in kids), 10 * MAX_NODES)
            continue
        stack.append((node, depth, True))
        stack.extend((kid, depth + 1, False) for kid in kids if id(kid) not in sizes)
    if sizes[id(root)] <= MAX_KEY_NODES:
        return []
    problems = _bombs(root, sizes, "")
    if not problems and sizes[id(root)] > MAX_NODES:
        problems = [f"{_where(root)}: expands to more than {MAX_NODES:,} values; a spec needs a few hundred"]
    return problems


def _bombs(node: yaml.Node, sizes: dict[int, int], path: str) -> list[str]:
    """The keys whose values expand past :data:`MAX_KEY_NODES` (through YAML aliases), deepest mapping first."""
    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if sizes[id(value_node)] <= MAX_KEY_NODES:
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            sub = f"{path}.{key}" if path else str(key)
            deeper = _bombs(value_node, sizes, sub)
            found += deeper or [f"{sub}: {_where(value_node)}: expands to more than {MAX_KEY_NODES:,} values "
                                f"(YAML aliases &/* repeated); write the value out"]
    return found


def read_yaml_text(text: str, source: str | Path | None = None) -> Any:
    """Parse YAML text safely; raise :class:`SpecError` (naming ``source``) for syntax, depth or size problems."""
    loader = SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _graph_problems(node)
        if problems:
            raise SpecError(problems, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SpecError([yaml_problem(exc)], source) from None
    except RecursionError:
        raise SpecError([f"nested deeper than {MAX_DEPTH} levels"], source) from None
    finally:
        loader.dispose()


_TOP_KEY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:", re.MULTILINE)


def _oversize(data: bytes, known_keys: Collection[str]) -> list[str]:
    """Problems of a file over :data:`MAX_FILE_BYTES`: its size, and the unknown top-level keys a line scan finds
    (a file this big is usually generated by mistake; the keys say how)."""
    problems = [f"{len(data) / 2**20:.1f} MiB is larger than the {MAX_FILE_BYTES // 2**20} MiB limit of a spec "
                "file (a spec is a few kB)"]
    if known_keys:
        text = data.decode("utf-8", errors="replace")
        problems += [f"{key}: unknown key (top level)" for key in _TOP_KEY_RE.findall(text) if key not in known_keys]
    return problems


def read_yaml_file(path: str | Path, known_keys: Collection[str] = ()) -> Any:
    """Read and parse a YAML file given by a user; every failure is a :class:`SpecError` naming the file.

    ``known_keys``: the valid top-level keys, named in the refusal of an oversized file.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise SpecError(["file not found"], path)
        if not path.is_file():
            raise SpecError(["not a file (a YAML file is expected)"], path)
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError([f"cannot be read ({exc.strerror or type(exc).__name__})"], path) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(_oversize(path.read_bytes() if path.stat().st_size < 2**30 else data, known_keys), path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([f"line {line}, column {column}: not UTF-8 (byte 0x{data[exc.start]:02x}); "
                         "save the file as UTF-8"], path) from None
    return read_yaml_text(text, path)
