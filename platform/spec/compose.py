"""Composing a study from files: ``STUDY.yaml [RECIPE.yaml ...]`` merged left to right into one raw mapping.

Rules (``python -m platform.study STUDY.yaml recipes/cifar10-gpu.yaml``):

- mappings merge key by key, recursively; anything else (a list, a number, a string, null) in a later file
  replaces the earlier value, so ``search.seeds: [0]`` in a recipe replaces the study's seeds, it does not extend
  them;
- a file may hold ``name_suffix`` (a string): it is removed from the mapping and appended to the merged ``name``,
  in file order, so a recipe gives the composed study a name of its own (``window_size`` + ``-cifar10``) and a
  study run on two datasets never collides in the stores;
- the order is checked by content: the study file holds ``name``, a recipe does not (it may hold
  ``name_suffix``). With recipes, the first file must be the study and every later file a recipe; anything else
  is refused (exit 2) before the merge, so a recipe given first never silently loses to the study it precedes;
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


def _check_order(files: Sequence[Path], raws: Sequence[dict[str, Any]]) -> None:
    """The study file (it holds ``name``) first, recipes (no ``name``) after it."""
    usage = "give the study first, then recipes: python -m platform.study studies/STUDY.yaml recipes/RECIPE.yaml"
    problems: list[str] = []
    if "name" not in raws[0]:
        recipe = f"it holds no 'name', so it is a recipe ({files[0]})"
        studies = [str(p) for p, raw in zip(files, raws, strict=True) if "name" in raw]
        found = f"; the study file is {studies[0]}" if studies else ""
        problems.append(f"{files[0]}: the first file must be the study file, but {recipe}{found}; {usage}")
    for path, raw in zip(files[1:], raws[1:], strict=True):
        if "name" in raw and not problems:
            problems.append(f"{path}: holds 'name', so it is a study file, and only recipes may follow the study "
                            f"file {files[0]}; {usage} (a recipe renames with name_suffix)")
    if problems:
        raise SpecError(problems)


def compose_files(paths: Sequence[str | Path], *, known_keys: Collection[str] = ()) -> tuple[dict[str, Any], str]:
    """The merged raw mapping of ``paths`` (left to right, ``name_suffix`` applied) and a label naming them."""
    if not paths:
        raise SpecError(["no study file given"])
    files = [Path(p) for p in paths]
    merged: dict[str, Any] = {}
    suffixes: list[str] = []
    raws = [_read(path, known_keys) for path in files]
    if len(files) > 1:
        _check_order(files, raws)
    for path, raw in zip(files, raws, strict=True):
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
