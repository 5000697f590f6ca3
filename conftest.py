"""Root conftest: make ``platform`` resolve to this repo's package under plain ``pytest`` too.

Plain ``pytest`` imports the standard-library ``platform`` before the repo root is on ``sys.path``; drop the
cached module so the next import finds the project package (a strict superset of the stdlib module).
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent)
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)
_cached = sys.modules.get("platform")
if _cached is not None and not hasattr(_cached, "__path__"):
    del sys.modules["platform"]
import platform  # noqa: E402,F401  (re-imported from the repo root)
