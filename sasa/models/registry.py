"""The model registry: names → builders, and :func:`create_model` dispatching through it (timm's pattern).

A *builder* is any callable ``fn(num_classes: int, **options) -> nn.Module``. Three ways to name one:

- ``@register_model`` (or ``register_model(fn, name="mynet")``) registers it under its function name;
- a *family* (:func:`register_family`) builds every name of a live table: the ResNet depths of
  :data:`sasa.models.factory.MODELS`, so a new table entry is a new model with no other edit;
- ``"package.module:function"`` imports the module (which may register names of its own) and uses that
  function: a researcher's own backbone, studied without editing sasa or the platform.

Every built model carries ``model.config``, a JSON-serialisable dict such that ``create_model(**model.config)``
rebuilds it. A builder may set it itself (the ResNets set their resolved options); otherwise it is
``{"name": name, "num_classes": num_classes, **options}`` — the options as given. Bad names, modules,
attributes, options and builders raise ``ValueError`` saying which and what is valid.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from torch import nn

__all__ = ["create_model", "is_import_name", "list_models", "register_family", "register_model", "resolve_builder"]

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)

MAX_SHOWN = 12  # functions listed when a "module:function" names a missing one
_BUILDERS: dict[str, Builder] = {}
# (names, builder(name, num_classes, **options)): names are read at every lookup, so the table stays live.
_FAMILIES: list[tuple[Callable[[], Iterable[str]], Callable[..., nn.Module]]] = []


@overload
def register_model(fn: B, *, name: str | None = None) -> B: ...
@overload
def register_model(fn: None = None, *, name: str | None = None) -> Callable[[B], B]: ...
def register_model(fn: B | None = None, *, name: str | None = None) -> B | Callable[[B], B]:
    """Register ``fn(num_classes, **options) -> nn.Module`` under ``name`` (default: its ``__name__``).

    Usable bare (``@register_model``), with a name (``@register_model(name="mynet")``) or as a call. Registering
    a name twice with a different builder raises ``ValueError``; ``fn`` is returned unchanged.
    """

    def add(builder: B) -> B:
        if not callable(builder):
            raise ValueError(f"register_model: {builder!r} is not callable; register a function "
                             "fn(num_classes, **options) -> nn.Module")
        key = name or getattr(builder, "__name__", None)
        if not isinstance(key, str) or not key or ":" in key:
            raise ValueError(f"register_model: invalid name {key!r}; give a non-empty name without ':'")
        old = _BUILDERS.get(key)
        reloaded = old is not None and _qualified(old) == _qualified(builder)  # the same module imported again
        if key in list_models() and old is not builder and not reloaded:
            raise ValueError(f"register_model: {key!r} is already registered; choose another name")
        _BUILDERS[key] = builder
        return builder

    return add if fn is None else add(fn)


def _qualified(fn: Callable[..., Any]) -> tuple[str, str]:
    return getattr(fn, "__module__", "") or "", getattr(fn, "__qualname__", "") or ""


def register_family(names: Callable[[], Iterable[str]], builder: Callable[..., nn.Module]) -> None:
    """Register ``builder(name, num_classes, **options)`` for every name ``names()`` returns at lookup time."""
    _FAMILIES.append((names, builder))


def list_models() -> list[str]:
    """Registered names accepted by :func:`create_model` (``"module:function"`` names are accepted too)."""
    names = set(_BUILDERS)
    for family_names, _ in _FAMILIES:
        names.update(family_names())
    return sorted(names)


def is_import_name(name: object) -> bool:
    """Is ``name`` of the ``"package.module:function"`` form?"""
    return isinstance(name, str) and ":" in name


def _hint(value: object, valid: list[str]) -> str:
    close = difflib.get_close_matches(value, valid, n=1) if isinstance(value, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _imported(name: str) -> Builder:
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"create_model: invalid model name {name!r}; a builder is named 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises at import
        raise ValueError(f"create_model: cannot import module {module_name!r} of model {name!r} "
                         f"({type(exc).__name__}: {exc}); is it on PYTHONPATH?") from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            functions = sorted(n for n, v in vars(target).items() if inspect.isfunction(v) and not n.startswith("_"))
            shown = ", ".join(functions[:MAX_SHOWN]) + (", ..." if len(functions) > MAX_SHOWN else "")
            raise ValueError(f"create_model: {module_name!r} has no attribute {attribute!r} (model {name!r})"
                             f"{_hint(part, functions)}; its functions: {shown or 'none'}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"create_model: {name!r} is a {type(target).__name__}, not callable; name a function "
                         "fn(num_classes, **options) -> nn.Module")
    return target


def resolve_builder(name: object) -> Callable[..., nn.Module]:
    """The builder ``fn(num_classes, **options)`` for ``name``, importing a ``"module:function"`` name.

    Raises ``ValueError`` for an unknown name (with did-you-mean and the valid names) or a module, attribute or
    object that cannot serve as a builder.
    """
    if is_import_name(name):
        return _imported(name)  # type: ignore[arg-type]
    if isinstance(name, str) and name in _BUILDERS:
        return _BUILDERS[name]
    for family_names, builder in _FAMILIES:
        if isinstance(name, str) and name in set(family_names()):
            return lambda num_classes, **options: builder(name, num_classes, **options)
    valid = list_models()
    raise ValueError(f"create_model: unknown model name {name!r}{_hint(name, valid)}; valid names: "
                     f"{', '.join(valid)}, or a builder 'package.module:function'")


def _check_options(name: str, builder: Callable[..., nn.Module], num_classes: int, options: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):  # a builtin or C callable: let the call judge
        return
    try:
        signature.bind(num_classes, **options)
    except TypeError as exc:
        accepted = [p.name for p in list(signature.parameters.values())[1:]
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        extra = [key for key in options if key not in accepted]
        if extra and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            raise ValueError(f"create_model: unknown option {extra[0]!r}{_hint(extra[0], accepted)} for model "
                             f"{name!r}; valid options: {', '.join(accepted) or 'none'}") from None
        raise ValueError(f"create_model: model {name!r} cannot be called with num_classes and options "
                         f"{sorted(options)}: {exc}") from None


def create_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build model ``name`` (:func:`list_models`, or ``"package.module:function"``) for ``num_classes`` classes.

    The options go to the builder as keyword arguments. The built-in ResNets' options are documented in
    :func:`sasa.models.factory.build_resnet`. The result carries ``model.config`` (module docstring);
    ``create_model(**model.config)`` rebuilds it.
    """
    builder = resolve_builder(name)
    family = not is_import_name(name) and name not in _BUILDERS
    if not family:
        _check_options(name, builder, num_classes, options)
    model = builder(num_classes, **options)
    if not isinstance(model, nn.Module):
        raise ValueError(f"create_model: builder of {name!r} returned a {type(model).__name__}, not a "
                         "torch.nn.Module; a builder returns the network")
    config = getattr(model, "config", None)
    if not (isinstance(config, dict) and config.get("name") == name):
        model.config = {"name": name, "num_classes": num_classes, **options}
    return model
