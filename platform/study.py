"""``python -m platform.study STUDY.yaml``: run (or resume) an ablation / search study end to end.

YAML → validated spec → Optuna study (storage) + MLflow parent run (tracking) → one trial per design point × seed,
each trained with Lightning and tracked as a nested MLflow run → summary table. Rerunning the same command
resumes; ``--fresh`` archives the stored study and starts over. Exit codes: 0 done, 2 bad input or unreachable
store, 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console
from tqdm.auto import tqdm

from platform.data import DataError, build_datamodule, prepare_data_once
from platform.design import print_design
from platform.errors import SpecError
from platform.objective import Objective, TrialContext, TrialFailedError
from platform.runner import (
    ATTR_PARENT_RUN,
    StudyConflictError,
    enqueue_missing,
    nothing_left,
    open_study,
    progress,
    recover,
)
from platform.spec import load_spec
from platform.stores import StoreError, check_tracking, ensure_local_dirs, open_storage, resolve_stores
from platform.summary import get_summary_info, render_summary
from platform.tracking import Tracker, git_commit, redact

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
    parser.add_argument("--workers", type=int, metavar="N",
                        help="worker processes sharing the study (overrides execution.workers)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="folder for the default stores, data cache and checkpoints (default: ./runs)")
    return parser


def _quiet_libraries() -> None:
    """Keep the terminal for progress and results: library chatter goes below WARNING."""
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    console = Console(stderr=False)
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
        return _run(spec, stores, fresh=args.fresh, console=console)
    except (StoreError, StudyConflictError, DataError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE


def _run(spec: Any, stores: Any, *, fresh: bool, console: Console) -> int:
    ensure_local_dirs(stores)
    check_tracking(stores.tracking_uri)
    storage = open_storage(stores.storage_url)
    # Data first: a missing dataset must not leave a half-made study behind.
    prepare_data_once(spec.data, stores.data_cache)
    study, archived = open_study(spec, storage, fresh=fresh)
    if archived:
        console.print(f"archived the previous study as [bold]{archived}[/] (its trials and MLflow runs are kept)")
    tracker = Tracker(stores.tracking_uri, artifact_root=stores.artifact_root)
    experiment_id = tracker.experiment_id(spec.name)
    parent_id = study.user_attrs.get(ATTR_PARENT_RUN)
    parent_run = tracker.open_parent_run(
        experiment_id, spec.name, parent_id,
        tags={"sasa.optuna_storage": redact(stores.storage_url) or "", "sasa.git_commit": git_commit()},
    )
    if parent_id is None:
        study.set_user_attr(ATTR_PARENT_RUN, parent_run)
        tracker.client.log_text(parent_run, spec.to_yaml(), "spec.yaml")
        tracker.log_params(parent_run, {"description": spec.description or "", "design": spec.search.design})
    recovered = recover(study, tracker, experiment_id, parent_run)
    if recovered:
        console.print(f"closed trials left RUNNING by a dead process as FAILED: {recovered} (they run again)")
    enqueue_missing(study, spec)

    def datamodule_factory(batch_size: int, seed: int) -> Any:
        dm = build_datamodule(spec.data, batch_size=batch_size, seed=seed, cache_dir=stores.data_cache)
        dm.setup("fit")
        return dm

    probe = datamodule_factory(spec.train.batch_size, 0)
    context = TrialContext(
        spec=spec, tracker=tracker, experiment_id=experiment_id, parent_run_id=parent_run,
        datamodule_factory=datamodule_factory, data_info=probe.dataset_info(),
        work_root=stores.trial_dir(spec.name), accelerator=spec.execution.accelerator, commit=git_commit(),
    )
    status = "FAILED"
    try:
        _optimize(study, spec, Objective(context), console=console)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        console.print("\n[bold yellow]interrupted[/]: the running trial is recorded as failed and will run again; "
                      "rerun the same command to resume")
        return EXIT_INTERRUPTED
    finally:
        tracker.close_run(parent_run, status)
        _report(study, spec, stores, console=console)
    return 0


def _optimize(study: optuna.Study, spec: Any, objective: Objective, *, console: Console) -> None:
    state = progress(study, spec)
    if nothing_left(study, spec):
        console.print(f"study [bold]{spec.name}[/] is complete ({state.done}/{state.total} trials); nothing to run")
        return
    start = time.monotonic()
    bar = tqdm(total=state.total, initial=state.done, desc=f"study {spec.name}", unit="trial", position=0,
               dynamic_ncols=True, leave=True)

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        now = progress(study, spec)
        bar.total = now.total
        bar.n = now.done
        bar.set_postfix_str(f"last: #{trial.number} {trial.state.name.lower()}", refresh=True)
        if nothing_left(study, spec):
            study.stop()

    try:
        study.optimize(
            objective,
            catch=(TrialFailedError,),
            callbacks=[on_trial_end],
            timeout=spec.search.timeout,
            gc_after_trial=True,
        )
    finally:
        bar.close()
    console.print(f"ran for {time.monotonic() - start:.0f} s")


def _report(study: optuna.Study, spec: Any, stores: Any, *, console: Console) -> None:
    rows = get_summary_info(study)
    if rows:
        render_summary(rows, metric=spec.objective.metric, direction=spec.objective.direction, console=console)
    state = progress(study, spec)
    console.print(f"trials done: {state.done}/{state.total}")
    console.print(f"Optuna storage: {redact(stores.storage_url)} (study '{spec.name}')")
    console.print(f"MLflow tracking: {redact(stores.tracking_uri)} (experiment '{spec.name}')")
    console.print(f"browse the runs: [bold]{stores.ui_command()}[/] then open http://127.0.0.1:5000")


if __name__ == "__main__":
    sys.exit(main())
