"""``python -m platform.study STUDY.yaml [RECIPE.yaml ...]``: run (or resume) an ablation / search study end to end.

YAML → validated spec → Optuna study (storage) + MLflow parent run (tracking) → one trial per design point × seed,
each trained with Lightning and tracked as a nested MLflow run → summary table. Rerunning the same command
resumes; ``--fresh`` archives the stored study and starts over. Exit codes: 0 done, 2 bad input or unreachable
store, 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..startup import EXIT_INTERRUPTED, interrupt_exits

with interrupt_exits("interrupted while starting (nothing was created); rerun the same command"):
    from rich.console import Console

    from ..data.sources import DataError
    from ..spec.errors import SpecError
    from ..stores.connect import StoreError
    from ..stores.redaction import redact
    from .ddp import ddp_follower_requested
    from .devices import DevicePlanError, WorkerPlan
    from .dry_run import power_lines, print_design, stored_verdicts
    from .follower import run_ddp_follower
    from .lifecycle import StudyConflictError
    from .preflight import PreflightError, backend_problems
    from .run import StudyRequest, quiet_libraries, run_study, run_worker

EXIT_USAGE = 2



def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (worker processes), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Run or resume a sasa-lab study: an Optuna study whose trials train SASA / conv / hybrid "
        "backbones with Lightning, tracked in MLflow. Rerun the same command to resume an interrupted study.",
        epilog="Exit codes: 0 success, 2 bad spec / arguments / unreachable store, 130 interrupted. "
        "Results: ./runs/ by default (Optuna: runs/optuna.db, MLflow: runs/mlflow.db + runs/mlartifacts).",
    )
    parser.add_argument("study", type=Path, help="study YAML file (see studies/ and the README's spec reference)")
    parser.add_argument("recipes", type=Path, nargs="*", metavar="RECIPE.yaml",
                        help="files merged over the study left to right, e.g. recipes/cifar10-gpu.yaml (mappings "
                        "merge, lists replace; a recipe's name_suffix is appended to the study name)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
        help="override a spec value, e.g. --set train.epochs=2 --set 'search.seeds=[0,1]' (repeatable)",
    )
    parser.add_argument("--print-spec", action="store_true",
                        help="print the merged, validated spec (files, then --set) as YAML and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate, print every trial (design point × seed) with params/FLOPs, and exit")
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage URL (overrides the spec's `storage`); default sqlite:///runs/optuna.db")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI (overrides the spec's `tracking`); default sqlite:///runs/mlflow.db")
    parser.add_argument("--fresh", action="store_true",
                        help="start over: archive the stored study as NAME.archived-<time> (nothing is deleted)")
    parser.add_argument("--workers", type=_positive_int, metavar="N",
                        help="worker processes sharing the study (overrides execution.workers)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="folder for the default stores, data cache and checkpoints (default: ./runs)")
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the main process only
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; Ctrl-C at any moment ends it with one line and exit code 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted: no store is left half-made; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    if ddp_follower_requested():
        return run_ddp_follower()
    args = build_parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)  # recipes after --set too
    quiet_libraries()
    console = Console()
    request = StudyRequest(spec_path=args.study, recipes=tuple(args.recipes), overrides=tuple(args.overrides),
                           storage=args.storage,
                           tracking_uri=args.tracking_uri, runs_dir=args.runs_dir, workers=args.workers,
                           fresh=args.fresh)
    try:
        spec, stores = request.load()
        if args.print_spec:
            print(spec.to_yaml(), end="")
            return 0
        if args.dry_run:
            plans = request.plan(spec)  # workers that do not fit the machine are bad input in a dry run too
            problems = backend_problems(spec, plans[0])  # a kernel this machine cannot run, too
            if problems:
                raise PreflightError("\n".join(problems))
            print_design(spec, console=console, stored=stored_verdicts(spec, stores),
                         power=power_lines(spec, stores))
            return 0
        if args.worker_index is not None:
            return run_worker(spec, stores, WorkerPlan.from_env())
        return run_study(request, console=console).code
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, StudyConflictError, DataError, DevicePlanError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a folder or file the preflight could not foresee (a race, a full disk)
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: --runs-dir {args.runs_dir}: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    exit_code = main()
    if exit_code == EXIT_INTERRUPTED:  # the stores are settled; threads still compiling kernels (torch.compile's
        sys.stdout.flush()  # pool) would otherwise hold the exit for minutes after Ctrl-C
        sys.stderr.flush()
        os._exit(exit_code)
    sys.exit(exit_code)
