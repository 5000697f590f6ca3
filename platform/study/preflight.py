"""Everything a study needs, checked before anything is created (:func:`preflight`).

Order of a run: validate the spec → plan the workers → **preflight** → create the runs folder and stores → train.
The preflight creates nothing: the runs folder must be a folder or creatable (no file in its path); a SQLite
store's folder must exist (or lie inside the runs folder, which will be made); a server store must answer; the
data source must load and decode (into a temporary folder, moved into the data cache afterwards); and settings
that only the data or the machine can judge must fit (``train.max_steps`` against one epoch, ``16-mixed`` on a
CPU, evaluation splits that every DDP rank gets a share of: :func:`~platform.data.shards.shard_problems`).
Every problem is one line naming the option or field, raised together as :class:`PreflightError`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sasa.kernels import ENV_VAR, resolve_backend

from ..data.shards import shard_problems
from ..data.sources import DataError
from ..data.staging import StagedData, discard, stage_data
from ..spec.study_spec import StudySpec
from ..spec.values import READY_NAMES, check_levels
from ..stores.connect import StoreError, check_tracking
from ..stores.folders import folder_problem
from ..stores.locations import Stores
from ..stores.redaction import redact
from ..stores.sqlite_files import MLFLOW, OPTUNA, store_problem
from .devices import WorkerPlan

CONNECT_TIMEOUT_S = 10


class PreflightError(StoreError):
    """What must be fixed before a study can start: one line per problem (exit code 2)."""


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def url_problem(url: str, option: str, runs: Path, kind: str = OPTUNA) -> str | None:
    """Why a store URL cannot be reached (None: it can), creating nothing (an existing SQLite file is opened
    read-only and must be the ``kind`` of store it is named as: :func:`~..stores.sqlite_files.store_problem`)."""
    shown = f"{option} {redact(url)}"
    if url.startswith(("http://", "https://", "file:", "databricks")):
        return None  # MLflow-only schemes: checked by check_tracking
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"{shown}: not a database URL; use e.g. sqlite:///runs/optuna.db or postgresql://user@host/db"
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return None
        path = Path(database)
        if path.exists():
            return store_problem(url, kind, option) if path.is_file() else f"{shown}: {path} is not a file"
        if _inside(path.parent, runs):
            return None  # made with the runs folder (checked on its own)
        if not path.parent.is_dir():
            return f"{shown}: the folder {path.parent} does not exist; create it or use another path"
        return None if os.access(path.parent, os.W_OK) else f"{shown}: the folder {path.parent} is not writable"
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    try:
        engine = create_engine(parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as exc:  # driver errors vary by backend
        first = (redact(str(exc)) or type(exc).__name__).strip().splitlines()[0][:200]
        return f"{shown}: cannot connect ({first})"
    return None


def backend_problems(spec: StudySpec, plan: WorkerPlan) -> list[str]:
    """The SASA kernel backend resolved for the device the trials run on (``model.backend``, its search levels,
    or ``SASA_BACKEND`` for ``auto``): Triton needs CUDA, or the CPU only under ``TRITON_INTERPRET=1``."""
    device = torch.device("cuda" if plan.accelerator in ("gpu", "cuda") else "cpu")
    levels: list[tuple[str, object]] = [("model.backend", spec.model.backend or "auto")]
    for key, param in spec.search.parameters.items():
        if READY_NAMES.get(key, key) == "model.backend":
            levels += [(f"search.parameters.{key}", value) for value in check_levels(param)]
    problems: list[str] = []
    for field, backend in levels:
        try:
            resolve_backend(str(backend), device)
        except ValueError as exc:
            shown = f"auto ({ENV_VAR}=triton)" if backend == "auto" else str(backend)
            unset = f" and unset {ENV_VAR}" if backend == "auto" else ""
            if device.type == "cpu":
                reason = f"the trials run on the CPU (execution.accelerator: {spec.execution.accelerator}" + \
                    (")" if spec.execution.accelerator == "cpu" else ", and this machine has no CUDA)")
                problems.append(f"{field}: {shown} cannot run here: {reason} and TRITON_INTERPRET is not set; use "
                                f"model.backend: torch or auto{unset}, or set TRITON_INTERPRET=1 (Triton's "
                                "interpreter; slow)")
            else:
                problems.append(f"{field}: {shown}: {exc}")
    return list(dict.fromkeys(problems))


def _consistency(spec: StudySpec, plan: WorkerPlan, num_train: int | None) -> list[str]:
    problems: list[str] = backend_problems(spec, plan) if num_train is None else []
    train = spec.train
    if train.precision == "16-mixed" and plan.accelerator == "cpu":
        how = "is cpu" if spec.execution.accelerator == "cpu" else "(auto) resolves to cpu on this machine"
        problems.append(f"train.precision: 16-mixed needs a GPU, and execution.accelerator {how}; use 32-true "
                        "or bf16-mixed on a CPU")
    if num_train is not None and train.max_steps is not None:
        per_epoch = math.ceil(num_train / train.batch_size)
        limit = train.limit_train_batches
        if isinstance(limit, int):
            per_epoch = min(per_epoch, limit)
        elif isinstance(limit, float):
            per_epoch = max(1, int(per_epoch * limit))
        if train.max_steps < per_epoch:
            problems.append(f"train.max_steps: {train.max_steps} steps end before the first epoch ({per_epoch} "
                            f"steps), so validation never runs; use ≥ {per_epoch} or null")
    return problems


def preflight(spec: StudySpec, stores: Stores, plan: WorkerPlan, *, cli_storage: str | None,
              cli_tracking: str | None) -> StagedData:
    """Check folders, stores, data and machine-dependent settings; create nothing; raise :class:`PreflightError`.

    Returns the data, checked and staged (see :func:`~platform.data.staging.install_staged`).
    """
    problems: list[str] = []
    runs_problem = folder_problem(stores.root, "--runs-dir")
    if runs_problem:
        problems.append(runs_problem)
    storage_option = "--storage" if cli_storage else "storage" if spec.storage else "--runs-dir"
    tracking_option = "--tracking-uri" if cli_tracking else "tracking" if spec.tracking else "--runs-dir"
    for url, option, kind in ((stores.storage_url, storage_option, OPTUNA),
                              (stores.tracking_uri, tracking_option, MLFLOW)):
        problem = url_problem(url, option, stores.root, kind)
        if problem and problem not in problems:
            problems.append(problem)
    if stores.tracking_uri.startswith(("http://", "https://")):
        try:
            check_tracking(stores.tracking_uri)
        except StoreError as exc:
            problems.append(str(exc).replace("--tracking-uri", tracking_option, 1))
    if problems:  # no data work for a study that cannot start anyway
        raise PreflightError("\n".join(problems))
    problems += _consistency(spec, plan, None)
    if problems:
        raise PreflightError("\n".join(problems))
    try:
        data = stage_data(spec.data, stores.data_cache)
    except DataError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"data: the source could not be prepared ({type(exc).__name__}: {exc})") from None
    problems = _consistency(spec, plan, data.num_train)
    problems += shard_problems(data.sizes, world_size=plan.devices,
                               batch_size=spec.train.batch_size, limit_val=spec.train.limit_val_batches)
    if problems:
        discard(data)
        raise PreflightError("\n".join(problems))
    return data
