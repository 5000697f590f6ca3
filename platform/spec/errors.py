"""Errors raised for bad study specs.

A :class:`SpecError` gathers *every* problem found in a spec, one line each, formatted as
``<yaml path>: <problem>; <what is valid>`` so a user can fix them all in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class SpecError(ValueError):
    """A study spec (file, ``--set`` overrides or mapping) is invalid.

    ``problems`` holds one line per problem; ``str()`` prefixes them with the spec's source (the file).
    It subclasses :class:`ValueError`, so callers that treat bad input generically still catch it.
    """

    def __init__(self, problems: str | Iterable[str], source: str | Path | None = None) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        self.source: str | None = None if source is None else str(source)
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        head = f"{self.source}: {count} {noun}" if self.source else f"invalid study spec: {count} {noun}"
        return "\n".join([head, *(f"  {line}" for line in self.problems)])

    def __str__(self) -> str:
        return self._render()
