"""How spec values read in a report: as the YAML a user wrote (``{min: 2, max: 4}``), not as Python's repr
(``{'min': 2, 'max': 4}``)."""

from __future__ import annotations

from typing import Any

import yaml


def yaml_flow(value: Any) -> str:
    """``value`` as one line of YAML flow style: ``{min: 2, max: 4}``, ``[0, 1, 2]``, ``relative``, ``null``."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip().removesuffix(
        "\n...").strip()
