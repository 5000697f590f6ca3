"""The platform's start-up guard (:mod:`platform.startup`, standard library only) under whichever name it runs:
``platform`` from the repository root, ``sasa_lab`` installed. A bridge like :mod:`.lab`, but light: the report
command imports it before anything heavy, so Ctrl-C during its imports is one line and exit 130."""

from __future__ import annotations

if __package__ == "dashboards":
    from platform.startup import interrupt_exits
else:  # installed: sasa_lab.dashboards
    from sasa_lab.startup import interrupt_exits

__all__ = ["interrupt_exits"]
