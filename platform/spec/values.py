"""Values of search parameters: ready names, Optuna-compatible encodings, labels and discrete levels.

The paper's ablations (Ramachandran et al., 2019, Tables 3-7) vary one model option at a time: the spatial
extent k (``window_size``), positional encoding, heads, the attention stem's value mixtures and which layer
groups use attention.  ``search.parameters`` names such options by a *ready name* (:data:`READY_NAMES`) or by a
dotted path into the spec (``model.<field>`` / ``train.<field>``).

Optuna categorical choices must be None, bool, int, float or str, so list-valued choices (``attention_groups``)
are encoded as string labels: ``[1, 2]`` -> ``"1-2"``, ``[]`` -> ``"none"`` (a list of non-integers becomes its
compact JSON).  Decoding looks the label up among the parameter's own choices, so labels only need to be
unique within one parameter.  Pure functions of plain values (no pydantic models are built here); the level
functions read a parameter and the ``search`` section through the :class:`Dimension` and :class:`Design`
protocols, which :class:`.parameters.ParameterSpec` and :class:`.parameters.SearchSpec` satisfy.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from .errors import did_you_mean

Choice = str | int | float | bool | None

READY_NAMES: dict[str, str] = {
    "window_size": "model.kernel_size",
    "heads": "model.heads",
    "pos_enc": "model.pos_enc",
    "stem_mixtures": "model.stem_mixtures",
    "backbone": "model.backbone",
    "attention_groups": "model.attention_groups",
    "width": "model.width",
    "lr": "train.lr",
    "weight_decay": "train.weight_decay",
}
MAX_GRID_POINTS = 100_000
_ENUMERATE_LIMIT = 64  # int ranges up to this many values are checked value by value


class Dimension(Protocol):
    """What the level functions read of a search parameter (:class:`.parameters.ParameterSpec`)."""

    @property
    def type(self) -> str: ...
    @property
    def choices(self) -> list[Any] | None: ...
    @property
    def low(self) -> int | float | None: ...
    @property
    def high(self) -> int | float | None: ...
    @property
    def step(self) -> int | None: ...


class Design(Protocol):
    """What :func:`combos` and the cross-section checks read of the ``search`` section
    (:class:`.parameters.SearchSpec`)."""

    @property
    def design(self) -> str: ...
    @property
    def parameters(self) -> Mapping[str, Dimension]: ...
    @property
    def points(self) -> list[dict[str, Any]] | None: ...


# --- names and values ------------------------------------------------------------------------------------


def target(key: str, sections: dict[str, type[BaseModel]]) -> tuple[str, str | None]:
    """The dotted spec path a parameter key sets, and a problem message if it names nothing."""
    if key in READY_NAMES:
        return READY_NAMES[key], None
    section, _, field = key.partition(".")
    if section in sections and field:
        fields = list(sections[section].model_fields)
        if field in fields:
            return key, None
        return key, f"'{field}' is not a {section} option{did_you_mean(field, fields)}; valid: {', '.join(fields)}"
    hint = did_you_mean(key, list(READY_NAMES))
    return key, (f"unknown parameter{hint}; use a ready name ({', '.join(READY_NAMES)}) or a dotted path "
                 f"{' or '.join(f'{s}.<field>' for s in sections)}")


def encode(value: Any) -> Choice:
    """An Optuna-compatible categorical choice for a spec value (lists become string labels)."""
    if not isinstance(value, list):
        return value
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "-".join(str(v) for v in value) if value else "none"
    return json.dumps(value, separators=(",", ":"))


def copy_value(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def label(value: Any) -> str:
    """How a value appears in a design point's key."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(encode(value))


def same(a: Any, b: Any) -> bool:
    """Equal as YAML values (1 == 1.0, but true != 1)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- levels ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredDimension:
    """A parameter of a stored (resolved) spec dict, read as a :class:`Dimension` (type categorical by default)."""

    type: str
    choices: list[Any] | None = None
    low: int | float | None = None
    high: int | float | None = None
    step: int | None = None

    @classmethod
    def of(cls, param: Mapping[str, Any]) -> StoredDimension:
        return cls(param.get("type", "categorical"), param.get("choices"), param.get("low"), param.get("high"),
                   param.get("step"))


def levels(param: Dimension) -> list[Any] | None:
    """The discrete values of a parameter (categorical choices, expanded int range); None for float ranges."""
    if param.type == "categorical":
        return [copy_value(c) for c in param.choices or []]
    if param.type == "int":
        return list(range(int(param.low), int(param.high) + 1, param.step or 1))
    return None


def count_levels(param: Dimension) -> int | None:
    """How many discrete values :func:`levels` would give (without building them); None for float ranges."""
    if param.type == "categorical":
        return len(param.choices or [])
    if param.type == "int":
        return max(0, (int(param.high) - int(param.low)) // (param.step or 1) + 1)
    return None


def check_levels(param: Dimension) -> list[Any]:
    """Values worth checking: every level of a short list or range, else a range's two ends."""
    count = count_levels(param)
    if count is not None and count <= _ENUMERATE_LIMIT:
        return levels(param) or []
    return [param.low, param.high]


def combos(search: Design, names: list[str]) -> Iterator[tuple[Any, ...]]:
    """Level combinations of ``names``: the explicit ``search.points`` if given, else the cartesian product."""
    if search.points is not None:
        seen = set()
        for point in search.points:
            combo = tuple(copy_value(point[name]) for name in names)
            if label(list(combo)) not in seen:
                seen.add(label(list(combo)))
                yield combo
        return
    grids = []
    for name in names:
        values = levels(search.parameters[name])
        if values is None:
            raise ValueError(f"search.parameters.{name}: a float range has no grid; use categorical or int")
        grids.append(values)
    yield from itertools.product(*grids)
