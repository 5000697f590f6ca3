"""The dashboards beside the platform, under whichever name the platform runs.

``dashboards`` is a top-level package when the platform runs from the repository root (this package is
``platform``) and ``sasa_lab.dashboards`` when the project is installed (this package is ``sasa_lab``). The
dashboards only read the stores; the study runner and the Python API call them through this module.
"""

from __future__ import annotations

if __package__ == "platform":
    from dashboards import collect, decisions, publish, verdicts
else:
    from .dashboards import collect, decisions, publish, verdicts

__all__ = ["collect", "decisions", "publish", "verdicts"]
