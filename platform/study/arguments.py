"""The command-line arguments that locate a study, shared by the user's command and the worker entry point.

``python -m platform.study`` (:mod:`.__main__`, the user's command) and ``python -m platform.study.worker``
(:mod:`.worker`, the processes the main process starts) read the same study: files, ``--set`` overrides, stores
and runs folder. This module defines those arguments once, turns parsed arguments into a :class:`.run.StudyRequest`,
and maps the errors of loading and running a study to one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from ..data.sources import DataError
from ..spec.errors import SpecError
from ..stores.connect import StoreError
from ..stores.faults import InfrastructureError
from ..stores.redaction import redact
from .devices import DevicePlanError
from .lifecycle import StudyConflictError
from .run import StudyRequest

EXIT_USAGE = 2
EXIT_STOPPED = 75  # the infrastructure stopped the study (a store away past the outage budget, a full disk): rerun


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The study file, recipes, ``--set``, ``--storage``, ``--tracking-uri`` and ``--runs-dir``."""
    parser.add_argument("study", type=Path, help="study YAML file (see studies/ and the README's spec reference)")
    parser.add_argument("recipes", type=Path, nargs="*", metavar="RECIPE.yaml",
                        help="files merged over the study left to right, e.g. recipes/cifar10-gpu.yaml (mappings "
                        "merge, lists replace; a recipe's name_suffix is appended to the study name)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
        help="override a spec value, e.g. --set train.epochs=2 --set 'search.seeds=[0,1]' (repeatable)",
    )
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage URL (overrides the spec's `storage`); default sqlite:///runs/optuna.db")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI (overrides the spec's `tracking`); default sqlite:///runs/mlflow.db")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="folder for the default stores, data cache and checkpoints (default: ./runs)")
    parser.add_argument("--outage-budget", type=_seconds, metavar="SECONDS",
                        help="how long a store may stay unreachable before the study stops cleanly (resumable); "
                        "overrides execution.outage_budget (default 300)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1 <= value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 1 to 604800, got {text!r}")
    return value


def request_from(args: argparse.Namespace, *, workers: int | str | None = None, fresh: bool = False) -> StudyRequest:
    """The :class:`.run.StudyRequest` that parsed :func:`add_study_arguments` name (``--outage-budget`` becomes the
    override ``execution.outage_budget``, so worker processes get it with the others)."""
    overrides = tuple(args.overrides)
    if getattr(args, "outage_budget", None) is not None:
        overrides += (f"execution.outage_budget={args.outage_budget}",)
    return StudyRequest(spec_path=args.study, recipes=tuple(args.recipes), overrides=overrides,
                        storage=args.storage, tracking_uri=args.tracking_uri, runs_dir=args.runs_dir,
                        workers=workers, fresh=fresh)


def resume_command() -> str:
    """The command line that resumes this study: the one that was run (without ``--fresh``)."""
    args = [arg for arg in sys.argv[1:] if arg != "--fresh"]
    return redact(shlex.join(["python", "-m", "platform.study", *args])) or ""


def exit_on_bad_input(work: Callable[[], int], *, runs_dir: Path, resume: bool = True) -> int:
    """``work()``'s exit code; a bad spec, store, dataset, device plan or runs folder: one line and exit 2; the
    infrastructure stopping the study (:class:`..stores.faults.InfrastructureError`): one line naming what and how
    long, the command that resumes (``resume``; workers leave it to the main process), and exit 75."""
    try:
        return work()
    except InfrastructureError as exc:
        again = f"; the study is kept: rerun `{resume_command()}` to resume" if resume else ""
        print(f"stopped: {redact(str(exc))}{again}", file=sys.stderr, flush=True)
        return EXIT_STOPPED
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, StudyConflictError, DataError, DevicePlanError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a folder or file the preflight could not foresee (a race, a full disk)
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: --runs-dir {runs_dir}: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
