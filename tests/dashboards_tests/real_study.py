"""A tiny study written by the real runner (``python -m platform.study``), made once per test session.

Unlike the hand-written stores of ``tests/dashboards_tests/__init__.py``, every record here comes from the
product: Optuna trials and user attributes, the MLflow parent and child runs, their per-epoch metrics. Two
design points (learning rates) × two seeds, one epoch each, on the conv backbone (the fastest).
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec

NAME = "realstores"
LEVELS = [0.02, 0.05]
REFERENCE = 0.05
SEEDS = [0, 1]


@dataclass(frozen=True)
class RealStudy:
    root: Path  # the folder holding the spec file and runs/
    spec_path: Path
    storage: str
    tracking: str
    result: subprocess.CompletedProcess

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"


@functools.cache
def real_study(base: Path) -> RealStudy:
    """Run the study under ``base/real_study`` once per session (``base``: the session's base temp folder)."""
    root = base / "real_study"
    root.mkdir()
    spec = write_spec(root / f"{NAME}.yaml", tiny_spec(
        NAME,
        model={"backbone": "conv"},
        search={"design": "grid", "parameters": {"lr": LEVELS}, "seeds": SEEDS, "reference": {"lr": REFERENCE}},
    ))
    result = run_study(spec, root)
    assert result.returncode == 0, result.stdout + result.stderr
    storage, tracking = stores(root)
    return RealStudy(root, spec, storage, tracking, result)
