"""Does a stored study's spec describe the same results as the spec given now? (resume vs "different spec").

A study stores its resolved spec when it is created. Later versions of sasa-lab add options (with defaults that
reproduce the old behaviour) and leave model options null to mean the factory's default, so the stored dict of an
older study differs textually from today's resolution of the same YAML. Two specs describe the same results when,
outside the sections that never change results (description, stores, execution), every key is equal after
normalising: a model option of a built-in ResNet that is null means ``sasa.create_model``'s default (a user's
builder's defaults are its own, so its nulls stay null), ``train.compile: true`` means ``"default"`` (the mode it
has always meant), and a key that the stored spec lacks counts as unchanged when today's value is that option's
default.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from sasa.models.factory import DEFAULTS as MODEL_DEFAULTS
from sasa.models.factory import MODELS

from .parameters import SearchSpec
from .sections import (
    SECTIONS,
    DataSpec,
    ExecutionSpec,
    ModelSpec,
    ObjectiveSpec,
    PrunerSpec,
    TrainSpec,
    compile_mode,
)

NON_RESULT_KEYS = ("description", "storage", "tracking", "execution")
# The model of each of :data:`SECTIONS` (``StudySpec``'s field types; imported here, not from ``study_spec``, so
# this module stays below ``study_spec``); tests/platform_tests/test_spec_compare.py checks it is StudySpec's.
_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "data": DataSpec, "model": ModelSpec, "train": TrainSpec, "search": SearchSpec, "objective": ObjectiveSpec,
    "pruner": PrunerSpec, "execution": ExecutionSpec,
}


def _section_defaults() -> dict[str, dict[str, Any]]:
    """Each section's defaults (for the sections that validate empty), as plain JSON types."""
    defaults: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        model_cls = _SECTION_MODELS[name]
        if isinstance(model_cls, type) and issubclass(model_cls, BaseModel):
            try:
                defaults[name] = model_cls.model_validate({}).model_dump(mode="json")
            except ValidationError:
                continue
    return defaults


def _normalised_model(section: Any) -> Any:
    if not isinstance(section, dict) or section.get("name", "resnet26") not in MODELS:
        return section  # a user's builder: null means its own default, which only it knows
    return {key: MODEL_DEFAULTS.get(key) if value is None and key in MODEL_DEFAULTS else value
            for key, value in section.items()}  # fmt: skip


def _normalised_train(section: Any) -> Any:
    if not isinstance(section, dict) or "compile" not in section:
        return section
    return {**section, "compile": compile_mode(section["compile"])}


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def result_changes(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ in a way that can change results (empty: the same study)."""
    defaults = _section_defaults()
    changes: list[str] = []
    for key in sorted(set(stored) | set(current)):
        if key in NON_RESULT_KEYS:
            continue
        old, new = stored.get(key), current.get(key)
        if key == "model":
            old, new = _normalised_model(old), _normalised_model(new)
        if key == "train":
            old, new = _normalised_train(old), _normalised_train(new)
        if isinstance(old, dict) and isinstance(new, dict):
            section_defaults = defaults.get(key, {})
            if key == "model":
                section_defaults = _normalised_model(section_defaults)
            for sub in sorted(set(old) | set(new)):
                if sub not in old and sub in section_defaults and _same(new.get(sub), section_defaults[sub]):
                    continue  # an option added since the study was stored, left at its default
                if not _same(old.get(sub), new.get(sub)):
                    changes.append(f"{key}.{sub}")
        elif not _same(old, new):
            changes.append(key)
    return changes
