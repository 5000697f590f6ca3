"""``python -m platform.study STUDY.yaml [RECIPE.yaml ...]``: run (or resume) an ablation / search study end to end.

YAML → validated spec → Optuna study (storage) + MLflow parent run (tracking) → one trial per design point × seed,
each trained with Lightning and tracked as a nested MLflow run → summary table. Rerunning the same command
resumes; ``--fresh`` archives the stored study and starts over. Exit codes: 0 done, 2 bad input or unreachable
store, 75 stopped by the infrastructure (rerun to resume), 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..startup import EXIT_INTERRUPTED, interrupt_exits

with interrupt_exits("interrupted while starting (nothing was created); rerun the same command"):
    from rich.console import Console

    from .arguments import EXIT_USAGE, add_study_arguments, exit_on_bad_input, request_from
    from .ddp import ddp_follower_requested
    from .devices import AUTO
    from .dry_run import power_lines, print_design, stored_verdicts
    from .follower import run_ddp_follower
    from .preflight import PreflightError, backend_problems
    from .run import StudyRequest, quiet_libraries, run_study

__all__ = ["EXIT_USAGE", "build_parser", "main"]


def _positive_int(text: str) -> int | str:
    if text == AUTO:
        return AUTO
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (worker processes) or 'auto', got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Run or resume a sasa-lab study: an Optuna study whose trials train SASA / conv / hybrid "
        "backbones with Lightning, tracked in MLflow. Rerun the same command to resume an interrupted study.",
        epilog="Exit codes: 0 success, 2 bad spec / arguments / unreachable store, 75 stopped by the infrastructure "
        "(a store away longer than --outage-budget, a full disk: rerun to resume), 130 interrupted. "
        "Results: ./runs/ by default (Optuna: runs/optuna.db, MLflow: runs/mlflow.db + runs/mlartifacts).",
    )
    add_study_arguments(parser)
    parser.add_argument("--print-spec", action="store_true",
                        help="print the merged, validated spec (files, then --set) as YAML and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate, print every trial (design point × seed) with params/FLOPs, and exit")
    parser.add_argument("--fresh", action="store_true",
                        help="start over: archive the stored study as NAME.archived-<time> (nothing is deleted)")
    parser.add_argument("--workers", type=_positive_int, metavar="N|auto",
                        help="worker processes sharing the study, or 'auto' (one per GPU; on a CPU one "
                        "single-threaded worker per core, up to 8); overrides execution.workers")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; Ctrl-C at any moment ends it with one line and exit code 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted: no store is left half-made; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    if ddp_follower_requested():  # Lightning re-runs this command line as the DDP ranks of a one-worker study
        return run_ddp_follower()
    args = build_parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)  # recipes after --set too
    quiet_libraries()
    request = request_from(args, workers=args.workers, fresh=args.fresh)
    return exit_on_bad_input(lambda: _command(args, request), runs_dir=args.runs_dir)


def _command(args: argparse.Namespace, request: StudyRequest) -> int:
    console = Console()
    spec, stores = request.load()
    if args.print_spec:
        print(spec.to_yaml(), end="")
        return 0
    if args.dry_run:
        plans = request.plan(spec)  # workers that do not fit the machine are bad input in a dry run too
        problems = backend_problems(spec, plans[0])  # a kernel this machine cannot run, too
        if problems:
            raise PreflightError("\n".join(problems))
        print_design(spec, console=console, stored=stored_verdicts(spec, stores), power=power_lines(spec, stores))
        return 0
    return run_study(request, console=console).code


if __name__ == "__main__":
    exit_code = main()
    if exit_code == EXIT_INTERRUPTED:  # the stores are settled; threads still compiling kernels (torch.compile's
        sys.stdout.flush()  # pool) would otherwise hold the exit for minutes after Ctrl-C
        sys.stderr.flush()
        os._exit(exit_code)
    sys.exit(exit_code)
