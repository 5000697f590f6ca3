"""Composing a study from files: ``STUDY.yaml [RECIPE.yaml ...]`` merged left to right into one raw mapping.

Rules (``python -m platform.study STUDY.yaml recipes/cifar10-gpu.yaml``):

- mappings merge key by key, recursively; anything else (a list, a number, a string, null) in a later file
  replaces the earlier value, so ``search.seeds: [0]`` in a recipe replaces the study's seeds, it does not extend
  them;
- a file may hold ``name_suffix`` (a string): it is removed from the mapping and appended to the merged ``name``,
  in file order, so a recipe gives the composed study a name of its own (``window_size`` + ``-cifar10``) and a
  study run on two datasets never collides in the stores;
- ``--set`` overrides apply after the merge (:func:`.study_spec.parse_spec`), so ``--set name=...`` wins.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from .errors import SpecError
from .reader import read_yaml_file

__all__ = ["NAME_SUFFIX", "compose_files", "deep_merge"]

NAME_SUFFIX = "name_suffix"


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: mappings merge recursively, every other value (lists included) replaces."""
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read(path: Path, known_keys: Collection[str]) -> dict[str, Any]:
    raw = read_yaml_file(path, known_keys=[*known_keys, NAME_SUFFIX])  # the one safe reader (size, depth, aliases)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError([f"top level: expected a mapping of keys (name, data, model, train, ...); got "
                         f"{type(raw).__name__}"], path)
    return raw


def compose_files(paths: Sequence[str | Path], *, known_keys: Collection[str] = ()) -> tuple[dict[str, Any], str]:
    """The merged raw mapping of ``paths`` (left to right, ``name_suffix`` applied) and a label naming them."""
    if not paths:
        raise SpecError(["no study file given"])
    files = [Path(p) for p in paths]
    merged: dict[str, Any] = {}
    suffixes: list[str] = []
    for path in files:
        raw = _read(path, known_keys)
        if NAME_SUFFIX in raw:
            suffix = raw.pop(NAME_SUFFIX)
            if not isinstance(suffix, str) or not suffix:
                raise SpecError([f"{NAME_SUFFIX}: expected a non-empty string appended to the study name (e.g. "
                                 f"'-cifar10'); got {suffix!r}"], path)
            suffixes.append(suffix)
        merged = deep_merge(merged, raw)
    if suffixes and isinstance(merged.get("name"), str):
        merged["name"] = merged["name"] + "".join(suffixes)
    return merged, " + ".join(str(p) for p in files)
