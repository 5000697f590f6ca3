"""The platform modules the report command reads, under whichever name the platform runs.

From the repository root the dashboards are the top-level ``dashboards`` package and the platform is ``platform``;
installed, they are ``sasa_lab.dashboards`` inside ``sasa_lab``. Only the command's modules (``__main__`` and
:mod:`.browse`) import this: the rest of ``dashboards/`` works on plain data and imports nothing of the platform,
so the platform can use it without an import cycle. Modules are imported by their full names, never through the
platform package's ``__init__``.
"""

from __future__ import annotations

if __package__ == "dashboards":
    import platform.labels as labels
    import platform.records as records
    import platform.reports.load as load
    import platform.reports.publish as publish
    import platform.spec as spec
    import platform.spec.compare as compare
    import platform.stores as stores
else:  # installed: sasa_lab.dashboards inside sasa_lab
    import sasa_lab.labels as labels
    import sasa_lab.records as records
    import sasa_lab.reports.load as load
    import sasa_lab.reports.publish as publish
    import sasa_lab.spec as spec
    import sasa_lab.spec.compare as compare
    import sasa_lab.stores as stores

__all__ = ["compare", "labels", "load", "publish", "records", "spec", "stores"]
