"""``python -m platform.study STUDY.yaml``: run (or resume) an ablation / search study end to end.

YAML → validated spec → Optuna study (storage) + MLflow parent run (tracking) → one trial per design point × seed,
each trained with Lightning and tracked as a nested MLflow run → summary table. Rerunning the same command
resumes; ``--fresh`` archives the stored study and starts over. Exit codes: 0 done, 2 bad input or unreachable
store, 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch
from rich.console import Console
from tqdm.auto import tqdm

from platform.data import DataError
from platform.ddp import ddp_follower_requested, run_ddp_follower
from platform.design import print_design
from platform.devices import DevicePlanError, WorkerPlan, plan_workers
from platform.errors import SpecError
from platform.objective import Objective
from platform.redaction import redact
from platform.report_hook import build_report_after_study
from platform.runner import StudyConflictError, nothing_left, progress
from platform.session import Session, open_session, optimize
from platform.spec import load_spec
from platform.stores import StoreError, resolve_stores
from platform.summary import get_summary_info, render_summary
from platform.workers import PLAN_ENV, run_workers

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
        prog="python -m platform.study",
        description="Run or resume a sasa-lab study: an Optuna study whose trials train SASA / conv / hybrid "
        "backbones with Lightning, tracked in MLflow. Rerun the same command to resume an interrupted study.",
        epilog="Exit codes: 0 success, 2 bad spec / arguments / unreachable store, 130 interrupted. "
        "Results: ./runs/ by default (Optuna: runs/optuna.db, MLflow: runs/mlflow.db + runs/mlartifacts).",
    )
    parser.add_argument("study", type=Path, help="study YAML file (see studies/ and the README's spec reference)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
        help="override a spec value, e.g. --set train.epochs=2 --set 'search.seeds=[0,1]' (repeatable)",
    )
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


def _quiet_libraries() -> None:
    """Keep the terminal for progress and results: library chatter goes below WARNING."""
    # Set on the rank_zero loggers themselves: importing pytorch_lightning later (mlflow.pytorch does) resets
    # its package logger to INFO, but a child's own level wins.
    for package in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        for name in (package, f"{package}.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)  # pickle is our documented choice (tracking.py)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats are relied on
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if ddp_follower_requested():
        return run_ddp_follower()
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    console = Console()
    try:
        spec = load_spec(args.study, args.overrides)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stores = resolve_stores(
        cli_storage=args.storage, cli_tracking=args.tracking_uri, spec_storage=spec.storage,
        spec_tracking=spec.tracking, root=args.runs_dir,
    )
    if args.dry_run:
        print_design(spec, console=console)
        return 0
    try:
        if args.worker_index is not None:
            return _run_worker(spec, stores)
        plans = plan_workers(
            accelerator=spec.execution.accelerator, devices=spec.execution.devices, workers=args.workers,
            spec_workers=spec.execution.workers, devices_per_trial=spec.execution.devices_per_trial,
            cuda_count=torch.cuda.device_count(), cpu_count=os.cpu_count() or 1,
        )
        session = open_session(spec, stores, fresh=args.fresh, console=console)
    except (StoreError, StudyConflictError, DataError, DevicePlanError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    return _run(session, plans, _worker_argv(argv), console=console)


def _worker_argv(argv: list[str]) -> list[str]:
    """The command line each worker gets: the user's, minus what only the main process acts on."""
    return [a for a in argv if a not in ("--fresh",)]


def _run(session: Session, plans: list[WorkerPlan], worker_argv: list[str], *, console: Console) -> int:
    spec = session.spec
    state = progress(session.study, spec)
    if nothing_left(session.study, spec):
        console.print(f"study [bold]{spec.name}[/] is complete ({state.done}/{state.total} trials); nothing to run")
    status, code, start = "FAILED", 0, time.monotonic()
    try:
        if len(plans) > 1:
            finished = run_workers(session, plans, worker_argv)
        else:
            plan = plans[0]
            context = session.context(accelerator=plan.accelerator, devices=plan.devices, progress_bar=True)
            finished = _run_in_process(session, Objective(context))
        status = "FINISHED"
        if not finished and spec.search.timeout is None:
            console.print("[bold red]study incomplete[/]: workers kept failing; see the [w…] lines above")
            code = 1
    except KeyboardInterrupt:
        status, code = "KILLED", EXIT_INTERRUPTED
        console.print("\n[bold yellow]interrupted[/]: the running trial is recorded as failed and will run again; "
                      "rerun the same command to resume")
    finally:
        session.tracker.close_run(session.parent_run, status)
        console.print(f"ran for {time.monotonic() - start:.0f} s")
        _report(session.study, spec, session.stores, console=console, full=code != EXIT_INTERRUPTED)
    return code


def _run_in_process(session: Session, objective: Objective) -> bool:
    spec, study = session.spec, session.study
    state = progress(study, spec)
    bar = tqdm(total=state.total, initial=state.done, desc=f"study {spec.name}", unit="trial", position=0,
               dynamic_ncols=True, leave=True)

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        now = progress(study, spec)
        bar.total, bar.n = now.total, now.done
        bar.set_postfix_str(f"last: #{trial.number} {trial.state.name.lower()}", refresh=True)

    try:
        return optimize(session, objective, on_trial_end=on_trial_end)
    finally:
        bar.close()


def _run_worker(spec: Any, stores: Any) -> int:
    """Worker mode (started by the main process): join the study and run trials until none is left."""
    plan = json.loads(os.environ.get(PLAN_ENV, "{}"))
    torch.set_num_threads(int(plan.get("threads", 1)))
    session = open_session(spec, stores, create=False)
    context = session.context(accelerator=plan.get("accelerator", "auto"), devices=int(plan.get("devices", 1)),
                              progress_bar=False)

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial.user_attrs
        value = f" {spec.objective.metric}={trial.values[0]:.4f}" if trial.values else ""
        reason = f" ({attrs['fail_reason']})" if "fail_reason" in attrs else ""
        print(f"trial #{trial.number} {attrs.get('design_point', '?')} seed={attrs.get('seed', '?')}: "
              f"{trial.state.name.lower()}{value}{reason}", flush=True)

    try:
        optimize(session, Objective(context), on_trial_end=on_trial_end)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0  # the main process judges completeness (it may start another round)


def _report(study: optuna.Study, spec: Any, stores: Any, *, console: Console, full: bool) -> None:
    rows = get_summary_info(study)
    if rows:
        render_summary(rows, metric=spec.objective.metric, direction=spec.objective.direction, console=console)
    state = progress(study, spec)
    console.print(f"trials done: {state.done}/{state.total}")
    if full and rows:  # not after Ctrl-C: the user wants the prompt back
        html = build_report_after_study(spec.name, stores.storage_url, stores.tracking_uri,
                                        stores.root / "reports" / spec.name)
        if html is not None:
            console.print(f"ablation report: {html} (also on the MLflow parent run under report/)")
    console.print(f"Optuna storage: {redact(stores.storage_url)} (study '{spec.name}')")
    console.print(f"MLflow tracking: {redact(stores.tracking_uri)} (experiment '{spec.name}')")
    console.print(f"browse the runs: [bold]{stores.ui_command()}[/] then open http://127.0.0.1:5000")


if __name__ == "__main__":
    sys.exit(main())
