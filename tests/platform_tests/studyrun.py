"""Helpers for tests that run real studies: tiny spec files and the CLI as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import yaml
from optuna.trial import FrozenTrial

from tests.support.forked import run_forked
from tests.support.limits import HANG_S

REPO = Path(__file__).resolve().parents[2]


def tiny_spec(name: str, **sections: Any) -> dict[str, Any]:
    """A study small enough for a few seconds per trial on a 2-core CPU (digits 8×8, quarter-width R26)."""
    spec: dict[str, Any] = {
        "name": name,
        "description": "test study",
        "data": {"source": "digits", "image_size": 8},
        "model": {"name": "resnet26", "backbone": "attention", "small_input": True, "width": 0.25, "heads": 2},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "warmup_epochs": 0,
                  "limit_train_batches": 3, "limit_val_batches": 2},
        "search": {"design": "grid", "parameters": {"window_size": [3, 5]}, "seeds": [0, 1]},
        "objective": {"metric": "val/acc", "direction": "maximize"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def stores(tmp_path: Path) -> tuple[str, str]:
    runs = tmp_path / "runs"
    return f"sqlite:///{runs / 'optuna.db'}", f"sqlite:///{runs / 'mlflow.db'}"


T = TypeVar("T")


def wait_for_trials(tmp_path: Path, name: str, proc: subprocess.Popen, found: Callable[[list[FrozenTrial]], T | None],
                    *, what: str, timeout: float = 420) -> T:
    """Poll the study ``name`` in ``tmp_path``'s default Optuna store while ``proc`` (running it) lives, until
    ``found(trials)`` returns something; that. Fails when the study ends first or after ``timeout`` seconds."""
    storage, _ = stores(tmp_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the study ended before {what} appeared"
        if (tmp_path / "runs" / "optuna.db").exists():  # never create the product's database ourselves
            try:
                result = found(optuna.load_study(study_name=name, storage=storage).get_trials())
            except KeyError:  # the study is not created yet
                result = None
            if result is not None:
                return result
        time.sleep(0.2)
    raise AssertionError(f"no {what} appeared in {timeout:.0f} s")


def study_cmd(spec_path: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "platform.study", str(spec_path), "--runs-dir", str(tmp_path / "runs"), *extra]


# Set in this process by in-process tests (mlflow.set_tracking_uri / set_registry_uri write them to os.environ):
# a command a test starts must not inherit another test's store.
LEAKED_MLFLOW_URIS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def env() -> dict[str, str]:
    """The environment of a command a test starts: this process's, less MLflow URIs left by other tests."""
    inherited = {k: v for k, v in os.environ.items() if k not in LEAKED_MLFLOW_URIS}
    return {**inherited, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}


def run_study(
    spec_path: Path, tmp_path: Path, *extra: str, timeout: float = HANG_S, env_vars: dict[str, str] | None = None,
    forked: bool = False,
) -> subprocess.CompletedProcess:
    """The study CLI as a subprocess (``env_vars`` added to its environment).

    ``forked``: run it in a fork of the session's warm fork server instead (:mod:`tests.support.forked`: the
    same command, exit code and output, without 10–25 s of imports), for a test that checks what the study did,
    not how a fresh process starts or dies. ``env_vars`` then must not be read at import (PYTHONPATH, TRITON_*).
    """
    if forked:
        return run_forked("platform.study", study_cmd(spec_path, tmp_path, *extra)[3:], cwd=REPO, env=env(),
                          timeout=timeout, extra_env=env_vars)
    return subprocess.run(
        study_cmd(spec_path, tmp_path, *extra), cwd=REPO, env={**env(), **(env_vars or {})}, capture_output=True,
        text=True, timeout=timeout,
    )


def _sigint_default() -> None:
    # A shell runs background jobs (`cmd &`, as CI scripts may) with SIGINT ignored, and children inherit that;
    # a user's terminal never does. Restore the default so that Python turns SIGINT into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_study(spec_path: Path, tmp_path: Path, *extra: str, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(study_cmd(spec_path, tmp_path, *extra), cwd=REPO, env=env(), stdout=handle,
                            stderr=subprocess.STDOUT, preexec_fn=_sigint_default)
