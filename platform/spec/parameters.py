"""Search parameters and the ``search`` section: one dimension each (:class:`ParameterSpec`; its levels are
computed by :mod:`.values`), and :class:`SearchSpec` (design, parameters, seeds, budget, reference levels, explicit
grid points).

A parameter's levels are checked against the target field's own validation (e.g. odd window sizes) by
:func:`value_problems`, so a bad level is reported at its YAML path before anything runs.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .base import Spec
from .errors import Problem, format_errors, join, raise_problems, show
from .sections import ModelSpec, Number, TrainSpec
from .seeds import ConfirmSpec, SeedRange, check_seeds, confirm_form, confirm_problems, seed_form
from .values import (
    MAX_GRID_POINTS,
    Choice,
    check_levels,
    combos,
    copy_value,
    count_levels,
    encode,
    is_number,
    label,
    levels,
    same,
)
from .values import target as target_of

# The level functions moved to :mod:`.values` (below this module); they stay importable from here.
__all__ = [
    "ParameterSpec", "SearchSpec", "check_levels", "combos", "count_levels", "decode", "levels", "value_problems",
]
# The sections a search parameter may set (``model.<field>`` / ``train.<field>`` or a ready name).
_TARGET_SECTIONS: dict[str, type[BaseModel]] = {"model": ModelSpec, "train": TrainSpec}


def _is_choice_value(value: Any) -> bool:
    scalar = (type(None), bool, int, float, str)
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


class ParameterSpec(Spec):
    """One search dimension: ``[a, b]`` (categorical shorthand) or a mapping with ``type``."""

    type: Literal["categorical", "int", "float", "log_float"]
    choices: list[Any] | None = None
    low: Number | None = None
    high: Number | None = None
    step: int | None = Field(None, le=10**9)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"type": "categorical", "choices": data}
        if not isinstance(data, dict):
            raise ValueError(f"expected a list of choices or a mapping with 'type' (categorical, int, float, "
                             f"log_float); got {show(data)}")
        if "type" not in data and "choices" in data:
            return {**data, "type": "categorical"}
        if data.get("type") == "int" and data.get("step") is None:
            return {**data, "step": 1}
        if data.get("type") in ("float", "log_float"):  # YAML ints are fine for float ranges
            return {k: float(v) if k in ("low", "high") and type(v) is int else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        problems: list[Problem] = []
        used = {"categorical": ("choices",), "int": ("low", "high", "step"), "float": ("low", "high"),
                "log_float": ("low", "high")}[self.type]
        for key in ("choices", "low", "high", "step"):
            if key not in used and getattr(self, key) is not None:
                problems.append((key, f"not used by type {self.type}; it takes {', '.join(used)}"))
        problems += [(key, f"required for type {self.type}") for key in used if getattr(self, key) is None]
        if problems:
            raise_problems(problems)
        if self.type == "categorical":
            problems += _choice_problems(self.choices or [])
        else:
            if self.type == "int":
                problems += [(k, f"type int needs an integer; got {show(getattr(self, k))}")
                             for k in ("low", "high") if not isinstance(getattr(self, k), int)]
                if (self.step or 0) < 1:
                    problems.append(("step", f"must be ≥ 1; got {self.step}"))
            if self.type == "log_float" and self.low is not None and self.low <= 0:
                problems.append(("low", f"must be > 0 for log_float; got {self.low}"))
            if self.low is not None and self.high is not None and self.low > self.high:
                problems.append(("high", f"{self.high} is below low ({self.low}); use high ≥ low"))
        raise_problems(problems)
        return self


def _choice_problems(choices: list[Any]) -> Iterator[Problem]:
    if not choices:
        yield "choices", "is empty; give at least one choice"
    seen: dict[str, int] = {}
    for i, value in enumerate(choices):
        if not _is_choice_value(value):
            yield join("choices", i), f"expected a number, string, true/false, null or a list of them; got " \
                                      f"{show(value)}"
            continue
        label = f"{type(value).__name__}:{encode(value)!r}"
        if label in seen:
            yield join("choices", i), f"duplicates choices[{seen[label]}] ({show(value)}); choices must differ"
        seen.setdefault(label, i)


class SearchSpec(Spec):
    """What is searched and how: design (sampler), parameters, seeds and budget.

    ``seeds`` is a list (every design point runs every seed) or ``{min, max}`` (adaptive, grid only: seeds
    0 … min−1, then one more seed per decision round for the comparisons still undecided, up to max);
    ``effect`` is the smallest difference that matters, in objective units (verdicts: better, worse,
    equivalent within ±effect, undecided). ``max_trials`` caps the trials adaptive seeds may add up to.
    """

    design: Literal["grid", "tpe", "random", "cmaes", "nsga2"] = "grid"
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    seeds: list[int] | SeedRange = Field(default_factory=lambda: [0])
    effect: float | None = Field(None, gt=0.0)
    n_trials: int | None = Field(None, ge=1, le=1_000_000)
    max_trials: int | None = Field(None, ge=1, le=1_000_000)
    timeout: float | None = Field(None, gt=0.0, le=365 * 24 * 3600.0)
    reference: dict[str, Any] | None = None
    points: list[dict[str, Any]] | None = None  # grid only: these design points instead of the full product
    confirm: ConfirmSpec | None = None  # sampled designs: the confirmation round (.confirm; on when unset)

    @property
    def confirmation(self) -> ConfirmSpec | None:
        """The confirmation round of a sampled design (on unless ``confirm: false``); None for a grid."""
        if self.design == "grid" or (self.confirm is not None and not self.confirm.enabled):
            return None
        return self.confirm or ConfirmSpec()

    @property
    def adaptive(self) -> bool:
        return isinstance(self.seeds, SeedRange)

    @property
    def initial_seeds(self) -> list[int]:
        """The seeds every design point runs first: the list, or 0 … min−1."""
        return list(range(self.seeds.min)) if isinstance(self.seeds, SeedRange) else list(self.seeds)

    @property
    def seed_bounds(self) -> tuple[int, int]:
        """(min, max) paired seeds per comparison; a fixed list of n seeds is (n, n)."""
        if isinstance(self.seeds, SeedRange):
            return self.seeds.min, self.seeds.max
        return len(self.seeds), len(self.seeds)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_form(cls, value: Any) -> Any:
        return seed_form(value)

    @field_validator("confirm", mode="before")
    @classmethod
    def _confirm_form(cls, value: Any) -> Any:
        return confirm_form(value)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int] | SeedRange) -> list[int] | SeedRange:
        return check_seeds(value)

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, ParameterSpec], info: ValidationInfo) -> dict[str, ParameterSpec]:
        problems: list[Problem] = []
        targets: dict[str, str] = {}
        for key, param in value.items():
            target, problem = target_of(key, _TARGET_SECTIONS)
            if problem is not None:
                problems.append((key, problem))
                continue
            if target in targets:
                problems.append((key, f"sets {target}, already set by '{targets[target]}'; keep one of them"))
            targets.setdefault(target, key)
            problems += value_problems(key, target, param, _TARGET_SECTIONS)
            if info.data.get("design") == "grid" and count_levels(param) is None:
                problems.append((key, f"a {param.type} range cannot be gridded; grid needs discrete levels: "
                                      "{type: categorical, choices: [...]} or {type: int, low, high, step}"))
        raise_problems(problems)
        return value

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        parameters: dict[str, ParameterSpec] | None = info.data.get("parameters")
        if parameters is None:  # the parameters themselves are invalid
            return value
        problems: list[Problem] = []
        for key, level in (value or {}).items():
            param = parameters.get(key)
            if param is None:
                valid = ", ".join(parameters) or "none defined"
                problems.append((key, f"not a search parameter; reference levels are for search.parameters "
                                      f"({valid})"))
                continue
            if param.type == "categorical" and not any(same(level, v) for v in param.choices or []):
                shown = ", ".join(show(v) for v in param.choices or [])
                problems.append((key, f"{show(level)} is not a level of {key}; choose one of {shown}"))
            elif param.type == "int" and not (isinstance(level, int) and not isinstance(level, bool)
                                              and param.low <= level <= param.high
                                              and (level - param.low) % (param.step or 1) == 0):
                problems.append((key, f"{show(level)} is not a level of {key}; choose an integer in "
                                      f"{param.low}..{param.high} (step {param.step})"))
            elif param.type in ("float", "log_float") and not (is_number(level) and param.low <= level <= param.high):
                problems.append((key, f"{show(level)} is outside {key}'s range; use a number in "
                                      f"[{param.low}, {param.high}]"))
        raise_problems(problems)
        return value

    @field_validator("points")
    @classmethod
    def _points(cls, value: list[dict[str, Any]] | None, info: ValidationInfo) -> list[dict[str, Any]] | None:
        parameters: dict[str, ParameterSpec] | None = info.data.get("parameters")
        if value is None or parameters is None:
            return value
        problems: list[Problem] = []
        if info.data.get("design") != "grid":
            problems.append(("", "explicit design points need design: grid"))
        if not value:
            problems.append(("", "is empty; list design points or remove points to use the full grid"))
        names = list(parameters)
        for index, point in enumerate(value):
            if not isinstance(point, dict) or sorted(point) != sorted(names):
                got = sorted(point) if isinstance(point, dict) else point
                problems.append((f"[{index}]", f"must set exactly the search parameters {names}; got {got}"))
                continue
            for key, level in point.items():
                if not any(same(level, v) for v in levels(parameters[key]) or []):
                    problems.append((f"[{index}].{key}", f"{show(level)} is not a level of {key}"))
        seen: dict[str, int] = {}
        for index, point in enumerate(value):
            if isinstance(point, dict) and not problems:
                key = "|".join(f"{k}={label(point[k])}" for k in sorted(point))
                if key in seen:
                    problems.append((f"[{index}]", f"repeats design point [{seen[key]}] ({key.replace('|', ', ')}); "
                                                   "list each design point once (seeds repeat it)"))
                seen.setdefault(key, index)
        raise_problems(problems)
        return value

    @model_validator(mode="after")
    def _budget(self) -> SearchSpec:
        problems: list[Problem] = []
        if self.design == "grid" and self.n_trials is not None:
            problems.append(("n_trials", "not used by the grid design (it runs every design point once per "
                                         "seed); remove it, or choose tpe, random, cmaes or nsga2"))
        if self.design != "grid" and self.n_trials is None and self.timeout is None:
            problems.append(("n_trials", f"required for design {self.design} unless timeout is set; "
                                         "e.g. n_trials: 20"))
        size = math.prod(count_levels(p) or 1 for p in self.parameters.values())
        if self.design == "grid" and size > MAX_GRID_POINTS:
            problems.append(("parameters", f"the grid has {size} design points; use at most "
                                           f"{MAX_GRID_POINTS} or a sampling design (tpe, random)"))
        problems += confirm_problems(design=self.design, confirm=self.confirm, reference=self.reference,
                                     parameters=list(self.parameters))
        if self.design != "grid" and not self.parameters:
            problems.append(("parameters", f"design {self.design} needs at least one parameter to search"))
        problems += self._adaptive_problems()
        if self.design == "cmaes" and importlib.util.find_spec("cmaes") is None:
            problems.append(("design", "cmaes needs the optional 'cmaes' package (pip install cmaes); or choose "
                                       "tpe, random, nsga2 or grid"))
        raise_problems(problems)
        return self

    def _adaptive_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.max_trials is not None and not self.adaptive:
            problems.append(("max_trials", "caps the trials adaptive seeds add; it needs seeds: {min: .., max: ..} "
                                           "(use n_trials or timeout for sampling designs)"))
        if not self.adaptive:
            return problems
        if self.design != "grid":
            problems.append(("seeds", f"adaptive seeds {{min, max}} need design: grid (comparisons are between "
                                      f"grid points); give a list of seeds for design {self.design}"))
        if self.effect is None:
            problems.append(("effect", "required with adaptive seeds {min, max}: the smallest difference that "
                                       "matters, in objective units (e.g. effect: 0.005)"))
        if not self.reference:
            problems.append(("reference", "required with adaptive seeds {min, max}: the level each comparison is "
                                          "made against, e.g. reference: {pos_enc: relative}"))
        return problems


def decode(param: ParameterSpec, value: Choice) -> Any:
    """The spec value behind an Optuna value of ``param`` (inverse of :func:`encode` over its choices)."""
    if param.type != "categorical":
        return value
    for choice in param.choices or []:
        encoded = encode(choice)
        if type(encoded) is type(value) and encoded == value:
            return copy_value(choice)
    valid = ", ".join(repr(encode(c)) for c in param.choices or [])
    raise ValueError(f"value {value!r} is not one of the parameter's encoded choices; valid: {valid}")


def value_problems(
    path: str, target_path: str, param: ParameterSpec, sections: dict[str, type[BaseModel]]
) -> list[Problem]:
    """Check a parameter's levels against the target field's own validation (e.g. odd window sizes)."""
    section, field = target_path.split(".", 1)
    model_cls = sections[section]

    def check(value: Any) -> list[str]:
        try:
            model_cls.model_validate({field: value})
        except ValidationError as err:  # field-level errors only: cross-field ones depend on the real section
            return [msg for _, msg in format_errors([e for e in err.errors() if e["loc"][:1] == (field,)],
                                                    model_cls)]
        return []

    problems: list[Problem] = []
    if param.type == "categorical":
        for i, value in enumerate(param.choices or []):
            problems += [(join(path, "choices", i), msg) for msg in check(value)]
    elif param.type == "int":
        bad = [(v, msgs) for v in check_levels(param) if (msgs := check(v))]
        if bad:
            values = ", ".join(str(v) for v, _ in bad)
            problems.append((path, f"range {param.low}..{param.high} (step {param.step}) includes invalid "
                                   f"values {values}: {bad[0][1][0]}"))
    else:
        for key in ("low", "high"):
            problems += [(join(path, key), msg) for msg in check(getattr(param, key))]
    return problems
