"""A table on a terminal of any width (rich): one table when it fits (headers may wrap, cells never); else its first
columns, then the rest in as few tables as fit (each with the first column again); narrower still, one block of
``name: value`` lines per row. No label, verdict or interval is ever cut, and no line is longer than the console.

Used by the end-of-study summary (``platform/study/summary.py``) and ``python -m dashboards STUDY`` on a terminal.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from . import columns

EDGES = "┓┃┫┩│┤┘"  # the last character of every line of a whole table (rich's default box)


def _table(title: str | None, shown: Sequence[columns.Column], metric: str, rows: Sequence[Sequence[str]],
           styles: Sequence[str | None], *, compact: bool = False) -> Table:
    """A rich table whose cells never wrap or shrink (each column at least as wide as its widest cell);
    ``compact``: each column exactly that wide, or as wide as its header's longest word, the header wrapping."""
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(shown):
        widest = max((len(r[i]) for r in rows), default=0)
        size = {"width": max([widest, *(len(word) for word in column.title(metric).split())])} if compact \
            else {"min_width": widest}
        table.add_column(column.title(metric), justify="left" if column.whole else "right", **size)
    for cells, style in zip(rows, styles, strict=True):
        table.add_row(*cells, style=style)
    return table


def fits(table: Table, width: int, cells: Sequence[Sequence[str]] = ()) -> bool:
    """Does ``table`` render at ``width`` columns whole: no line cut at the edge, no header shortened with "…", and
    every cell of ``cells`` on one line (never wrapped or squeezed)? Headers may wrap at spaces."""
    console = Console(width=width, color_system=None, legacy_windows=False, file=io.StringIO())
    with console.capture() as capture:
        console.print(table)
    lines = capture.get().splitlines()
    if any(line.rstrip() and line.rstrip()[-1] not in EDGES for line in lines[1 if table.title else 0:]):
        return False  # cut at the console's edge
    if "…" in "".join(lines) and not any("…" in cell for row in cells for cell in row):
        return False
    return all(any(cell in line for line in lines) for row in cells for cell in row if cell)


def _groups(shown: Sequence[columns.Column], metric: str, cells: Sequence[Sequence[str]],
            styles: Sequence[str | None], split: int, width: int) -> list[list[int]] | None:
    """Column indices of each table: the first ``split`` columns, then the rest packed into as few tables as fit
    (each starting with the first column again); None when even one such table cannot fit."""
    def whole(indices: list[int]) -> bool:
        part = [[row[i] for i in indices] for row in cells]
        return fits(_table(None, [shown[i] for i in indices], metric, part, styles, compact=True), width, part)

    if not whole(list(range(split))):
        return None
    groups, current = [list(range(split))], [0]
    for index in range(split, len(shown)):
        if whole([*current, index]):
            current.append(index)
        elif len(current) > 1 and whole([0, index]):
            groups.append(current)
            current = [0, index]
        else:
            return None
    if len(current) > 1:
        groups.append(current)
    return groups


def render_table(console: Console, *, title: str, shown: Sequence[columns.Column], metric: str,
                 cells: Sequence[Sequence[str]], styles: Sequence[str | None], split: int,
                 second_title: str | None = None) -> None:
    """Print ``cells`` (one list per row, in ``shown``'s order) in the widest layout ``console`` fits.

    ``split``: how many leading columns make the first table when one table is too wide; the rest follow in as
    few tables as fit, each repeating the first column (the first of them titled ``second_title``). When even
    that does not fit: one block of ``name: value`` lines per row, a value too long for its line on a line of
    its own.
    """
    width = console.width
    for compact in (False, True):
        wide = _table(title, shown, metric, cells, styles, compact=compact)
        if fits(wide, width, cells):
            console.print(wide)
            return
    groups = _groups(shown, metric, cells, styles, split, width)
    if groups is not None:
        for number, indices in enumerate(groups):
            name = title if number == 0 else second_title if number == 1 else None
            part = [[row[i] for i in indices] for row in cells]
            console.print(_table(name, [shown[i] for i in indices], metric, part, styles, compact=True))
        return
    console.print(title, highlight=False)
    names = [c.title(metric) for c in shown[1:]]
    for row_cells, style in zip(cells, styles, strict=True):
        console.print(row_cells[0], style=style or "bold", highlight=False)
        for name, cell in zip(names, row_cells[1:], strict=True):
            if len(f"  {name}: {cell}") <= width:
                console.print(f"  {name}: {cell}", highlight=False)
            else:  # the value on a line of its own, whole where it fits
                console.print(f"  {name}:", highlight=False)
                console.print(f"    {cell}", highlight=False)
