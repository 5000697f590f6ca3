"""A table on a terminal of any width (rich): one table when it fits; else its first columns and the rest as two
tables (each with the first column again); narrower still, one block of ``name: value`` lines per row. No label,
verdict or interval is ever cut, and no line is longer than the console.

Used by the end-of-study summary (``platform/study/summary.py``) and ``python -m dashboards STUDY`` on a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from . import columns


def _table(title: str | None, shown: Sequence[columns.Column], metric: str, rows: Sequence[Sequence[str]],
           styles: Sequence[str | None]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(shown):
        # The label and the verdict never wrap or shrink: they are what a reader looks for.
        whole = column.whole
        table.add_column(column.title(metric), justify="left" if whole else "right", no_wrap=whole,
                         min_width=max((len(r[i]) for r in rows), default=0) if whole else None)
    for cells, style in zip(rows, styles, strict=True):
        table.add_row(*cells, style=style)
    return table


def fits(table: Table, width: int) -> bool:
    """Does ``table`` render at ``width`` columns without squeezing any cell?"""
    return Console(width=10_000).measure(table).maximum <= width


def render_table(console: Console, *, title: str, shown: Sequence[columns.Column], metric: str,
                 cells: Sequence[Sequence[str]], styles: Sequence[str | None], split: int,
                 second_title: str | None = None) -> None:
    """Print ``cells`` (one list per row, in ``shown``'s order) in the widest layout ``console`` fits.

    ``split``: how many leading columns make the first of two tables; the second (``second_title``) repeats the
    first column, then the rest. ``split`` equal to ``len(shown)`` means there is no second table.
    """
    width = console.width
    wide = _table(title, shown, metric, cells, styles)
    first = _table(title, shown[:split], metric, [c[:split] for c in cells], styles)
    rest = shown[split:]
    second = _table(second_title, [shown[0], *rest], metric, [[c[0], *c[split:]] for c in cells], styles)
    if fits(wide, width):
        console.print(wide)
    elif fits(first, width) and (not rest or fits(second, width)):
        console.print(first)
        if rest:
            console.print(second)
    else:  # one block per row
        console.print(title, highlight=False, soft_wrap=False)
        names = [c.title(metric) for c in shown[1:]]
        for row_cells, style in zip(cells, styles, strict=True):
            console.print(row_cells[0], style=style or "bold", highlight=False)
            for name, cell in zip(names, row_cells[1:], strict=True):
                if len(f"  {name}: {cell}") <= width:
                    console.print(f"  {name}: {cell}", highlight=False)
                else:  # the value on a line of its own, whole where it fits
                    console.print(f"  {name}:", highlight=False)
                    console.print(f"    {cell}", highlight=False)
