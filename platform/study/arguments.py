"""The command-line arguments that locate a study, shared by the user's command and the worker entry point.

``python -m platform.study`` (:mod:`.__main__`, the user's command) and ``python -m platform.study.worker``
(:mod:`.worker`, the processes the main process starts) read the same study: files, ``--set`` overrides, stores
and runs folder. This module defines those arguments once, turns parsed arguments into a :class:`.run.StudyRequest`,
and maps the errors of loading and running a study to one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ..data.sources import DataError
from ..spec.errors import SpecError
from ..stores.connect import StoreError
from ..stores.redaction import redact
from .devices import DevicePlanError
from .lifecycle import StudyConflictError
from .run import StudyRequest

EXIT_USAGE = 2


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


def request_from(args: argparse.Namespace, *, workers: int | str | None = None, fresh: bool = False) -> StudyRequest:
    """The :class:`.run.StudyRequest` that parsed :func:`add_study_arguments` name."""
    return StudyRequest(spec_path=args.study, recipes=tuple(args.recipes), overrides=tuple(args.overrides),
                        storage=args.storage, tracking_uri=args.tracking_uri, runs_dir=args.runs_dir,
                        workers=workers, fresh=fresh)


def exit_on_bad_input(work: Callable[[], int], *, runs_dir: Path) -> int:
    """``work()``'s exit code; a bad spec, store, dataset, device plan or runs folder: one line and exit 2."""
    try:
        return work()
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
