"""The dashboards the platform uses, under whichever name the platform runs.

``dashboards`` is a top-level package when the platform runs from the repository root (this package is
``platform``) and ``sasa_lab.dashboards`` when the project is installed (this package is ``sasa_lab``). Imports go
one way: the platform uses the dashboards' data types, statistics and report; nothing the platform imports from
``dashboards/`` imports the platform back (only ``python -m dashboards`` does, at the top).
"""

from __future__ import annotations

if __package__ == "platform.reports":
    from dashboards import (
        cheaper,
        columns,
        data,
        decisions,
        finalists,
        legend,
        publish,
        report,
        rows,
        terminal,
        text,
        verdicts,
    )
else:  # installed: sasa_lab.dashboards, named absolutely (a relative ``..`` would name this package's parent)
    from sasa_lab.dashboards import (
        cheaper,
        columns,
        data,
        decisions,
        finalists,
        legend,
        publish,
        report,
        rows,
        terminal,
        text,
        verdicts,
    )

__all__ = ["cheaper", "columns", "data", "decisions", "finalists", "legend", "publish", "report", "rows", "terminal",
           "text", "verdicts"]
