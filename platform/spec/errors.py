"""Errors raised for bad study specs.

A :class:`SpecError` gathers *every* problem found in a spec, one line each, formatted as
``<yaml path>: <problem>; <what is valid>`` so a user can fix them all in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MAX_SHOWN = 20  # problems printed; the rest are counted ("... and 399,990 more unknown keys")
MAX_LINE = 400  # characters of one problem line


def _clip(line: str) -> str:
    line = " ".join(line.splitlines())
    return line if len(line) <= MAX_LINE else f"{line[:MAX_LINE - 3]}..."


def _more(rest: list[str]) -> str:
    unknown = sum(1 for line in rest if "unknown key" in line)
    if unknown == len(rest):
        return f"… and {len(rest):,} more unknown keys"
    return f"… and {len(rest):,} more problems" + (f" ({unknown:,} unknown keys)" if unknown else "")


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
        head = f"{self.source}: {count:,} {noun}" if self.source else f"invalid study spec: {count:,} {noun}"
        shown = self.problems if count <= MAX_SHOWN + 1 else self.problems[:MAX_SHOWN]
        lines = [head, *(f"  {_clip(line)}" for line in shown)]
        if len(shown) < count:
            lines.append(f"  {_more(self.problems[MAX_SHOWN:])}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._render()
