"""The platform modules the dashboards read, under whichever name the platform runs.

From the repository root the dashboards are the top-level ``dashboards`` package and the platform is ``platform``;
installed, they are ``sasa_lab.dashboards`` inside ``sasa_lab``. Every platform import of the dashboards goes
through here, and none of them reaches the study runner: the dashboards only read the stores.
"""

from __future__ import annotations

if __package__ == "dashboards":
    from platform import records, spec, stores
    from platform.spec import values
else:
    from .. import records, spec, stores
    from ..spec import values

__all__ = ["records", "spec", "stores", "values"]
