"""Short, readable design-point labels for narrow places: the terminal summary, MLflow run names, Optuna attributes.

A design point's key (``window_size=7,pos_enc=relative``, see ``search.make_point``) is exact but long. Its short
label keeps the values and shortens the names the paper abbreviates (``k=7 pos=relative``); a pair whose value is
null is left out (``backbone=null,attention_groups=[3, 4]`` → ``groups=[3, 4]``). When shortening would make two
points of a study look alike, their full keys are used instead, so a label always names one point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The paper's own abbreviations (k for the window, m for value mixtures) and plain shortenings.
SHORT_NAMES = {
    "window_size": "k",
    "kernel_size": "k",
    "stem_mixtures": "m",
    "pos_enc": "pos",
    "attention_groups": "groups",
}
_PAIR_START = re.compile(r",(?=[A-Za-z_][\w.]*=)")  # a comma that starts the next ``name=`` (values hold commas)


def split_key(key: str) -> list[tuple[str, str]]:
    """``"a=1,b=[2, 3]"`` → ``[("a", "1"), ("b", "[2, 3]")]``; a key without ``=`` (``base``) gives ``[]``."""
    pairs = []
    for part in _PAIR_START.split(key):
        name, sep, value = part.partition("=")
        if sep:
            pairs.append((name, value))
    return pairs


def short_name(name: str) -> str:
    """``model.window_size`` → ``k``; names without an abbreviation lose only their dotted prefix."""
    last = name.rsplit(".", 1)[-1]
    return SHORT_NAMES.get(last, last)


def short_label(key: str) -> str:
    """The short label of one key, on its own (see :func:`short_labels` for a study's unique labels)."""
    pairs = [(short_name(n), v) for n, v in split_key(key) if v != "null"]
    if not pairs:
        return key
    return " ".join(f"{n}={v}" for n, v in pairs)


def short_labels(keys: Iterable[str]) -> dict[str, str]:
    """Key → short label for every key of a study; a key whose short label is not unique keeps its full key."""
    keys = list(dict.fromkeys(keys))
    short = {key: short_label(key) for key in keys}
    counts: dict[str, int] = {}
    for label in short.values():
        counts[label] = counts.get(label, 0) + 1
    return {key: label if counts[label] == 1 else key for key, label in short.items()}


def legend(keys: Iterable[str]) -> str:
    """The abbreviations the labels of ``keys`` use, e.g. ``k = window_size, pos = pos_enc`` ('' when none)."""
    used: dict[str, str] = {}
    for key in keys:
        for name, _ in split_key(key):
            last = name.rsplit(".", 1)[-1]
            if last in SHORT_NAMES:
                used.setdefault(SHORT_NAMES[last], last)
    return ", ".join(f"{short} = {name}" for short, name in used.items())
