"""A real install of the project (``pip install --target``) shared by the API tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.limits import HANG_S

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("platform", "dashboards", "sasa", "pyproject.toml", "README.md")


@pytest.fixture(scope="session")
def lab_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the project as ``pip`` installs it (``sasa`` and ``sasa_lab``), built from a copy of the
    sources so the repository gets no build files. Third-party packages come from this interpreter's site-packages."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, src / name)
    site = tmp_path_factory.mktemp("site")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=HANG_S,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return site


def lab_env(site: Path) -> dict[str, str]:
    """The environment of a process that uses the installed project (not the repository checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}


def tiny_study(name: str) -> dict:
    """A study of two design points × one seed that trains in seconds on a CPU (digits 8×8, narrow ResNet-26)."""
    return {
        "name": name,
        "data": {"source": "digits", "image_size": 8},
        "model": {"name": "resnet26", "backbone": "attention", "small_input": True, "width": 0.25, "heads": 2},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "warmup_epochs": 0, "limit_train_batches": 3,
                  "limit_val_batches": 2},
        "search": {"design": "grid", "parameters": {"window_size": [3, 5]}, "seeds": [0]},
    }
