"""Files for the issue-18 cases (:mod:`tests.cli_tests.cases3`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli_tests.files import spec_text
from tests.cli_tests.harness import REPO

REPO_RECIPE = str(REPO / "recipes" / "cifar10-gpu.yaml")


def recipe(name: str) -> Callable[[Path], None]:
    """A recipe (no ``name``): two epochs."""
    def make(where: Path) -> None:
        (where / name).write_text("train:\n  epochs: 2\n")
    return make


def second_study(name: str) -> Callable[[Path], None]:
    def make(where: Path) -> None:
        (where / name).write_text(spec_text(name="other"))
    return make
