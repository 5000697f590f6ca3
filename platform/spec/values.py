"""Values of search parameters: ready names, Optuna-compatible encodings, labels and discrete levels.

The paper's ablations (Ramachandran et al., 2019, Tables 3-7) vary one model option at a time: the spatial
extent k (``window_size``), positional encoding, heads, the attention stem's value mixtures and which layer
groups use attention.  ``search.parameters`` names such options by a *ready name* (:data:`READY_NAMES`) or by a
dotted path into the spec (``model.<field>`` / ``train.<field>``).

Optuna categorical choices must be None, bool, int, float or str, so list-valued choices (``attention_groups``)
are encoded as string labels: ``[1, 2]`` -> ``"1-2"``, ``[]`` -> ``"none"`` (a list of non-integers becomes its
compact JSON).  Decoding looks the label up among the parameter's own choices, so labels only need to be
unique within one parameter.  Pure functions of plain values (no pydantic models are built here).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from .yaml_paths import did_you_mean

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
