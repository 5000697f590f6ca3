"""Running a study as one typed call: :func:`run_study` (the CLI's main path and ``sasa_lab.run_study``).

Spec → stores → worker plan → session (Optuna study + MLflow parent run) → trials in this process or in worker
processes → summary, report. Worker processes and DDP ranks re-enter through ``python -m <package>.study``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import optuna
import torch
from rich.console import Console
from tqdm import tqdm  # plain: bars are shown on a terminal only (tqdm.auto would want widgets in a notebook)

from ..data.staging import discard
from ..records import ATTR_POINT, ATTR_RUN, ATTR_SEED, TrialRecord, is_done, is_failure
from ..reports.confirmed import finalists_of
from ..reports.views import finalists
from ..search import sampled_target
from ..spec.study_spec import StudySpec, load_spec
from ..spec.values import READY_NAMES, check_levels
from ..stores.faults import InfrastructureError
from ..stores.locations import Stores, resolve_stores
from ..stores.redaction import redact
from ..training.compile_cache import use_runs_cache
from .devices import WorkerPlan, plan_workers
from .lifecycle import nothing_left, progress, resume_note
from .objective import Objective, stop_waiting
from .preflight import preflight
from .report_hook import publish_results
from .session import Session, open_session, optimize
from .summary import (
    PointSummary,
    get_cheaper,
    get_summary_info,
    get_verdicts,
    lost_seed_notes,
    no_verdicts_reason,
    render_summary,
)
from .tracking import experiment_url
from .workers import run_workers

EXIT_DONE = 0
EXIT_INCOMPLETE = 1
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class StudyRequest:
    """What to run: the CLI's arguments, typed (``overrides`` are ``--set`` strings, ``dotted.key=value``)."""

    spec_path: Path
    overrides: tuple[str, ...] = ()
    recipes: tuple[Path, ...] = ()  # files merged over the study file, left to right (platform.spec.compose)
    storage: str | None = None
    tracking_uri: str | None = None
    runs_dir: Path = Path("runs")
    workers: int | str | None = None  # an integer >= 1, "auto" (devices.plan_workers) or None: the spec's
    fresh: bool = False
    # Lightning starts DDP ranks by re-running the command line, which only a ``python -m ... study`` process has:
    # callers without one (the Python API in a notebook) run DDP trials in a worker process.
    ddp_in_worker: bool = False

    def load(self) -> tuple[StudySpec, Stores]:
        """The validated spec (raises ``SpecError``) and the stores it and the arguments name."""
        spec = load_spec([self.spec_path, *self.recipes], self.overrides)
        stores = resolve_stores(cli_storage=self.storage, cli_tracking=self.tracking_uri, spec_storage=spec.storage,
                                spec_tracking=spec.tracking, root=self.runs_dir)
        return spec, stores

    def plan(self, spec: StudySpec) -> list[WorkerPlan]:
        """The worker processes for ``spec`` on this machine; raises ``DevicePlanError`` when they do not fit."""
        return plan_workers(
            accelerator=spec.execution.accelerator, devices=spec.execution.devices, workers=self.workers,
            spec_workers=spec.execution.workers, devices_per_trial=spec.execution.devices_per_trial,
            cuda_count=torch.cuda.device_count(), cpu_count=os.cpu_count() or 1,
        )

    def worker_argv(self) -> list[str]:
        """The command line of each worker process (without ``--fresh``: only the main process archives)."""
        argv = [str(Path(p).resolve()) for p in (self.spec_path, *self.recipes)]
        for override in self.overrides:
            argv += ["--set", override]
        if self.storage is not None:
            argv += ["--storage", self.storage]
        if self.tracking_uri is not None:
            argv += ["--tracking-uri", self.tracking_uri]
        return [*argv, "--runs-dir", str(Path(self.runs_dir).resolve())]


@dataclass(frozen=True)
class StudyResult:
    """How a run ended: ``code`` 0 done, 1 incomplete (failing workers, or every trial failed), 130 interrupted;
    the summary table."""

    name: str
    code: int
    done: int
    total: int
    points: list[PointSummary]
    stores: Stores
    report: Path | None = None

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def quiet_libraries() -> None:
    """Keep the terminal for progress and results: library chatter goes below WARNING."""
    # Set on the rank_zero loggers themselves: importing pytorch_lightning later (mlflow.pytorch does) resets
    # its package logger to INFO, but a child's own level wins.
    for package in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        for name in (package, f"{package}.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)
    schema = logging.getLogger("mlflow.store.db.utils")  # MLflow's table creation: one short line each, not its own
    schema.setLevel(logging.INFO)
    if not any(isinstance(f, _StoreSchemaLine) for f in schema.filters):
        schema.addFilter(_StoreSchemaLine())
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)  # pickle is our documented choice (tracking.py)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats are relied on
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    failures = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _DropOptunaFailure) for f in failures.filters):
        failures.addFilter(_DropOptunaFailure())


def run_study(request: StudyRequest, *, console: Console | None = None) -> StudyResult:
    """Run or resume the study; raises ``SpecError``, ``StoreError``, ``StudyConflictError``, ``DataError`` or
    ``DevicePlanError`` before anything is trained, and ``stores.faults.InfrastructureError`` when a store stays
    away longer than ``execution.outage_budget`` or the disk is full (the study is kept: call again to resume)."""
    console = console or Console()
    spec, stores = request.load()
    plans = request.plan(spec)
    data = preflight(spec, stores, plans[0], cli_storage=request.storage, cli_tracking=request.tracking_uri)
    try:
        session = open_session(spec, stores, fresh=request.fresh, console=console, data=data)
    finally:
        discard(data)
    if _compiles(spec):
        folder, removed = use_runs_cache(stores.root)
        fixed = f"; removed {len(removed)} broken file(s) an interrupted compile left" if removed else ""
        console.print(f"train.compile: the first epoch of each trial compiles the network and may take minutes "
                      f"(on a CPU, several) before its first step; compile cache: {folder}{fixed}", soft_wrap=True)
    separate = len(plans) > 1 or (request.ddp_in_worker and plans[0].devices > 1)
    return _run(session, plans, request.worker_argv(), separate=separate, console=console)


def _compiles(spec: StudySpec) -> bool:
    """Whether any trial of ``spec`` runs through ``torch.compile`` (the train section, or a searched level)."""
    if spec.train.compile:
        return True
    return any(READY_NAMES.get(key, key) == "train.compile"
               and any(level is True or isinstance(level, str) for level in check_levels(param))
               for key, param in spec.search.parameters.items())  # true or a mode ("default", ...) compiles


def run_worker(spec: StudySpec, stores: Stores, plan: WorkerPlan) -> int:
    """Worker mode (started by the main process): join the study and run trials until none is left."""
    torch.set_num_threads(plan.threads)
    session = open_session(spec, stores, create=False)
    context = session.context(accelerator=plan.accelerator, devices=plan.devices, progress_bar=False)

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        print(trial_line(session, trial), flush=True)

    try:
        optimize(session, Objective(context), on_trial_end=on_trial_end)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_DONE  # the main process judges completeness (it may start another round)


class _StoreSchemaLine(logging.Filter):
    """MLflow builds or migrates its tables once per tracking store (seconds): say so in one line of ours on stdout
    (an interrupt there is survivable, and this is what a person sees waiting); drop the rest of its INFO chatter."""

    SHOWN: ClassVar[dict[str, str]] = {
        "Creating initial MLflow database tables": "MLflow store: creating its tables (once per runs folder)",
        "Updating database tables": "MLflow store: updating its tables (seconds)",
    }

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for start, line in self.SHOWN.items():
            if message.startswith(start):
                print(line, flush=True)
        return record.levelno >= logging.WARNING


class _DropOptunaFailure(logging.Filter):
    """Optuna logs a failed trial at WARNING with its whole traceback; the study prints one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage().startswith("Trial ") and " failed " in record.getMessage())


def trial_line(session: Session, trial: optuna.trial.FrozenTrial) -> str:
    """One line per finished trial: number, design point, seed, state, value or reason, where the traceback is."""
    spec, record, attrs = session.spec, TrialRecord.of(trial), trial.user_attrs
    value = f" {spec.objective.metric}={record.value:.4f}" if record.value is not None else ""
    reason = f" ({record.fail_reason})" if record.fail_reason is not None else ""
    where = ""
    if trial.state == optuna.trial.TrialState.FAIL and attrs.get(ATTR_RUN):
        try:
            artifacts = session.tracker.client.get_run(attrs[ATTR_RUN]).info.artifact_uri
            where = f"; traceback: {artifacts}/traceback.txt"
        except Exception:  # the line must print even when the tracking store hiccups
            where = f"; traceback: traceback.txt of MLflow run {attrs[ATTR_RUN]}"
    return (f"trial #{trial.number} {attrs.get(ATTR_POINT, '?')} seed={attrs.get(ATTR_SEED, '?')}: "
            f"{trial.state.name.lower()}{value}{reason}{where}")


def _run(session: Session, plans: list[WorkerPlan], worker_argv: list[str], *, separate: bool,
         console: Console) -> StudyResult:
    spec = session.spec
    state = progress(session.study, spec)
    target, n_trials = sampled_target(spec), spec.search.n_trials
    if spec.search.design != "grid" and n_trials is not None and target is not None and target < n_trials:
        console.print(f"the search space holds only {target} distinct design points (n_trials={n_trials}): each "
                      f"runs once (× {len(spec.search.seeds)} seeds), then the study is complete")
    if nothing_left(session.study, spec):
        console.print(f"study [bold]{spec.name}[/] is complete ({state.done}/{state.total} trials); nothing to run")
    elif (note := resume_note(session.study, spec)) is not None:
        console.print(note, highlight=False, soft_wrap=True)
    if (reason := no_verdicts_reason(spec.resolved_dict())) is not None:
        console.print(reason, highlight=False, soft_wrap=True)
    live = interactive(console)
    status: str | None = "FAILED"
    code, start = EXIT_DONE, time.monotonic()
    try:
        if separate:
            finished = run_workers(session.study, spec, plans, worker_argv, housekeeping=session.housekeeping,
                                   bar=live)
        else:
            plan = plans[0]
            context = session.context(accelerator=plan.accelerator, devices=plan.devices, progress_bar=live)
            finished = _run_in_process(session, Objective(context), bar=live)
        status = "FINISHED"
        if not finished and spec.search.timeout is None:
            console.print("[bold red]study incomplete[/]: workers kept failing; see the [w…] lines above")
            code = EXIT_INCOMPLETE
        elif not any(is_done(t) and not is_failure(t) for t in session.study.get_trials(deepcopy=False)):
            console.print("[bold red]no result[/]: every trial of the study failed (the reasons are above and on "
                          "each trial's MLflow run); fix the cause, then rerun with --fresh")
            code = EXIT_INCOMPLETE
    except KeyboardInterrupt:
        status, code = "KILLED", EXIT_INTERRUPTED
        stop_waiting(session.tracker, session.study)  # a store away now must not hold the stop (the rerun settles)
        console.print("\n[bold yellow]interrupted[/]: the running trial is recorded as failed and will run again; "
                      "rerun the same command to resume")
    except InfrastructureError:  # one line by the caller; the parent run is closed if the tracking store takes it
        status = None
        with contextlib.suppress(Exception):  # the store that failed: the rerun reopens the parent run anyway
            session.tracker.close_run(session.parent_run, "KILLED")
        raise
    finally:
        if status is not None:
            try:
                session.tracker.close_run(session.parent_run, status)
            except InfrastructureError:
                if status != "KILLED":
                    raise  # interrupted: the store is away, the rerun reopens and closes the parent run
        console.print(f"ran for {time.monotonic() - start:.0f} s")
    return _report(session, code, console=console, full=code != EXIT_INTERRUPTED)


def interactive(console: Console) -> bool:
    """Progress bars only on a terminal: a log file, CI, SLURM or a notebook gets one plain line per trial."""
    return console.is_terminal and not console.is_jupyter


def _run_in_process(session: Session, objective: Objective, *, bar: bool) -> bool:
    """Run the trials here: with ``bar``, a study bar over Lightning's epoch bar (failures as lines above it);
    without, one line per finished trial with the study's progress, flushed."""
    spec, study = session.spec, session.study
    state = progress(study, spec)
    study_bar = tqdm(total=state.total, initial=state.done, desc=f"study {spec.name}", unit="trial", position=0,
                     dynamic_ncols=True, leave=True, disable=not bar)

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        now = progress(study, spec)
        if not bar:
            print(f"{trial_line(session, trial)} [{now.done}/{now.total} done]", flush=True)
            return
        study_bar.total, study_bar.n = now.total, now.done
        study_bar.set_postfix_str(f"last: #{trial.number} {trial.state.name.lower()}", refresh=True)
        if trial.state == optuna.trial.TrialState.FAIL:
            tqdm.write(trial_line(session, trial))

    try:
        return optimize(session, objective, on_trial_end=on_trial_end)
    finally:
        study_bar.close()


def _report(session: Session, code: int, *, console: Console, full: bool) -> StudyResult:
    study, spec, stores = session.study, session.spec, session.stores
    rows = get_summary_info(study)
    found = get_verdicts(study, spec.resolved_dict()) if rows else {}
    if rows:
        render_summary(rows, metric=spec.objective.metric, direction=spec.objective.direction, console=console,
                       found=found, effect=spec.search.effect,
                       cheaper_note=get_cheaper(study, spec.resolved_dict()) if found else None)
        for line in [no_verdicts_reason(spec.resolved_dict()), *lost_seed_notes(found)]:
            if line:
                console.print(line, highlight=False, soft_wrap=True)
        if (confirmed := finalists_of(study, spec.resolved_dict())) is not None:
            finalists.render(confirmed, console=console, metric=spec.objective.metric)
    state = progress(study, spec)
    console.print(f"trials done: {state.done}/{state.total}")
    html = publish_results(session, rows, found, console=console, full=full) if rows else None
    console.print(f"Optuna storage: {redact(stores.storage_url)} (study '{spec.name}')")
    console.print(f"MLflow tracking: {redact(stores.tracking_uri)} (experiment '{spec.name}')")
    console.print(f"browse the runs: [bold]{stores.ui_command()}[/] then open "
                  f"{experiment_url(session.experiment_id)} (the experiment, in the UI's model-training view)",
                  soft_wrap=True)
    return StudyResult(name=spec.name, code=code, done=state.done, total=state.total, points=rows, stores=stores,
                       report=html)
