"""The whole study spec (:class:`StudySpec`) and how it is read: :func:`load_spec` (a YAML file plus ``--set``
overrides) and :func:`parse_spec` (a mapping), both raising :class:`SpecError` with *every* problem as
``<yaml path>: <problem>; <what is valid>``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .base import Spec, reading_stored_spec
from .checks import cross_problems
from .compose import compose_files
from .errors import SpecError, format_errors, raise_problems, render
from .names import name_problem
from .parameters import SearchSpec
from .sections import SECTIONS, DataSpec, ExecutionSpec, ModelSpec, ObjectiveSpec, PrunerSpec, TrainSpec
from .yaml_paths import apply_overrides


class StudySpec(Spec):
    """One study: everything needed to run, resume and report it."""

    name: str
    description: str | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    objective: ObjectiveSpec = Field(default_factory=lambda: ObjectiveSpec.model_validate({}))
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    storage: str | None = None
    tracking: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        if isinstance(data, dict):  # ``search:`` with every child commented out reads as null
            return {k: v for k, v in data.items() if not (k in SECTIONS and v is None)}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _cross(self) -> StudySpec:
        raise_problems(cross_problems({n: getattr(self, n) for n in SECTIONS}))
        return self

    def resolved_dict(self) -> dict[str, Any]:
        """Every field, defaults filled in, as plain YAML/JSON types."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved spec as YAML (``load_spec`` reads it back to an equal spec)."""
        return yaml.safe_dump(self.resolved_dict(), sort_keys=False, allow_unicode=True)


def _section_parts(raw: dict[str, Any]) -> dict[str, BaseModel]:
    """The sections that validate on their own, so cross-section checks can still run."""
    parts: dict[str, BaseModel] = {}
    for name in SECTIONS:
        model_cls = StudySpec.model_fields[name].annotation
        try:
            value = raw.get(name)
            parts[name] = model_cls.model_validate({} if value is None else value)
        except ValidationError:
            continue
    return parts


def parse_spec(raw: Any, overrides: Sequence[str] = (), source: str | Path | None = None, *,
               stored: bool = False) -> StudySpec:
    """Validate a mapping (as read from YAML) after applying ``overrides``; raise :class:`SpecError`.

    ``stored``: the spec was read back from a study's store (checked in full when the study began), so a
    ``module:function`` builder is neither imported nor built (:func:`.base.reading_stored_spec`)."""
    if stored:
        with reading_stored_spec():
            return parse_spec(raw, overrides, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError([f"top level: expected a mapping of keys (name, data, model, train, search, ...); "
                         f"got {type(raw).__name__}"], source)
    raw = copy.deepcopy(raw)
    problems = apply_overrides(raw, overrides, StudySpec)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as err:
        lines = format_errors(err, StudySpec)
        if not any(error["loc"] == () for error in err.errors()):  # the cross checks did not run
            lines += cross_problems(_section_parts(raw))
        problems += [render(path, msg) for path, msg in lines]
        raise SpecError(list(dict.fromkeys(problems)), source) from None
    if problems:
        raise SpecError(problems, source)
    return spec


def load_spec(path: str | Path | Sequence[str | Path], overrides: Sequence[str] = ()) -> StudySpec:
    """Read a study YAML file, or several merged left to right (:mod:`.compose`: a study then recipes), apply
    ``--set`` overrides (``dotted.key=value``) and validate it."""
    paths = [path] if isinstance(path, str | Path) else list(path)
    raw, source = compose_files(paths, known_keys=list(StudySpec.model_fields))
    return parse_spec(raw, overrides, source=source)
