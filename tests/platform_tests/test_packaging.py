"""pyproject.toml installs every package of the checkout: ``sasa``, ``platform/`` as ``sasa_lab`` and
``dashboards/`` as ``sasa_lab.dashboards`` (the install itself is exercised by tests/api_tests)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALLED_AS = {"sasa": "sasa", "platform": "sasa_lab", "dashboards": "sasa_lab.dashboards"}


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, name in INSTALLED_AS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *relative)))
    return found


def test_every_package_is_listed_and_mapped() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == _packages_on_disk()
    assert setuptools["package-dir"] == {"sasa_lab": "platform", "sasa_lab.dashboards": "dashboards"}


def test_platform_code_imports_itself_relatively() -> None:
    """Absolute ``platform.`` imports would break under the installed name (only the bridges may name it)."""
    bridges = {REPO / "platform" / "reports" / "views.py", REPO / "dashboards" / "lab.py",
               REPO / "dashboards" / "guard.py"}
    offenders = []
    for folder in ("platform", "dashboards"):
        for path in (REPO / folder).rglob("*.py"):
            if path in bridges:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                stripped = line.strip()
                if stripped.startswith(("from platform", "import platform", "from dashboards", "import dashboards")):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {stripped}")
    assert not offenders, offenders
