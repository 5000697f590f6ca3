"""One command's view of a study: stores, Optuna study, MLflow parent run, and the trial loop.

:func:`open_session` is called by the main process (``create=True``: prepares data once, creates or resumes the
study, opens the parent run) and by each worker process (``create=False``: joins what the main process made).
:func:`optimize` is the trial loop both run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from rich.console import Console

from ..data.datamodule import ImageDataModule, build_datamodule, prepare_data_once
from ..data.staging import StagedData, install_staged
from ..records import STUDY_PARENT_RUN, TAG_COMMIT, TAG_STORAGE
from ..search import make_pruner, make_sampler
from ..spec.study_spec import StudySpec
from ..stores.connect import StoreError, check_tracking, open_storage
from ..stores.faults import infrastructure_first
from ..stores.locations import Stores, ensure_local_dirs
from ..stores.redaction import redact
from .confirm import enqueue_round
from .interrupts import deliver_held_interrupt, hold_interrupts_around_ask
from .lifecycle import enqueue_missing, mark_lost_node, nothing_left, open_study, progress, recover
from .notes import describe_experiment
from .objective import Objective, TrialContext, TrialFailedError
from .resilient import make_patient
from .rounds import run_round
from .tracking import Tracker, git_commit

STRAGGLER_POLL_S = 5.0
TrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


@dataclass
class Session:
    spec: StudySpec
    stores: Stores
    study: optuna.Study
    tracker: Tracker
    experiment_id: str
    parent_run: str

    def housekeeping(self) -> list[int]:
        """Fail trials of dead workers, close their MLflow runs, enqueue what is missing and, with adaptive seeds,
        the next decision round's seeds (a sampled design: its confirmation round's); returns failed trials."""
        failed = recover(self.study, self.tracker, self.experiment_id, self.parent_run)
        enqueue_missing(self.study, self.spec)
        run_round(self.study, self.spec, self.tracker, self.parent_run,
                  enqueue=lambda extra: enqueue_missing(self.study, self.spec, extra))
        enqueue_round(self.study, self.spec)  # sampled designs: the confirmation round, once the search is over
        return failed

    def context(self, *, accelerator: str, devices: int, progress_bar: bool) -> TrialContext:
        spec, stores = self.spec, self.stores

        def datamodule_factory(batch_size: int, seed: int) -> ImageDataModule:
            dm = build_datamodule(spec.data, batch_size=batch_size, seed=seed, cache_dir=stores.data_cache,
                                  num_workers=spec.execution.data_workers)
            dm.setup("fit")
            return dm

        info = datamodule_factory(spec.train.batch_size, 0).dataset_info()
        return TrialContext(
            spec=spec, tracker=self.tracker, experiment_id=self.experiment_id, parent_run_id=self.parent_run,
            datamodule_factory=datamodule_factory, data_info=info, data_cache=stores.data_cache,
            work_root=stores.trial_dir(spec.name),
            accelerator=accelerator, devices=devices, strategy="ddp" if devices > 1 else "auto",
            commit=git_commit(), progress_bar=progress_bar,
        )


def open_session(spec: StudySpec, stores: Stores, *, fresh: bool = False, create: bool = True,
                 console: Console | None = None, data: StagedData | None = None) -> Session:
    ensure_local_dirs(stores)
    check_tracking(stores.tracking_uri)  # fail fast: a store away when the command starts is exit 2
    budget = spec.execution.outage_budget  # from here on, outages are ridden out within it
    storage = open_storage(stores.storage_url, outage_budget_s=budget)
    storage.on_stale = mark_lost_node  # a trial whose heartbeat stopped fails as the infrastructure's, not its own
    tracker = Tracker(stores.tracking_uri, artifact_root=stores.artifact_root)
    make_patient(tracker, outage_budget_s=budget)
    if not create:
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec),
                                  pruner=make_pruner(spec))
        parent = study.user_attrs.get(STUDY_PARENT_RUN)
        if parent is None:
            raise StoreError(f"study '{spec.name}' has no MLflow parent run; "
                             "start it with python -m platform.study, which starts the workers")
        return Session(spec, stores, study, tracker, tracker.experiment_id(spec.name), parent)

    # Data first: a missing dataset must not leave a half-made study behind.
    if data is not None:  # checked by the preflight, before anything was created
        install_staged(data)
    prepare_data_once(spec.data, stores.data_cache)  # a no-op when the cache has it
    study, archived = open_study(spec, storage, fresh=fresh)
    if archived:
        old_dir = stores.trial_dir(spec.name)
        if old_dir.exists():  # checkpoints of the archived study must not be resumed by the new one
            shutil.move(str(old_dir), str(stores.trial_dir(archived)))
        if console:
            console.print(f"archived the previous study as [bold]{archived}[/] (its trials and runs are kept)")
    experiment_id = tracker.experiment_id(spec.name)
    parent_id = study.user_attrs.get(STUDY_PARENT_RUN)
    parent = tracker.open_parent_run(
        experiment_id, spec.name, parent_id,
        tags={TAG_STORAGE: redact(stores.storage_url) or "", TAG_COMMIT: git_commit()},
    )
    describe_experiment(tracker, experiment_id, spec)  # the spec may have changed (a resumed study's description)
    try:  # from here on the parent run is RUNNING: an interrupt must not leave it so
        if parent_id is None:
            study.set_user_attr(STUDY_PARENT_RUN, parent)
            tracker.client.log_text(parent, redact(spec.to_yaml()) or "", "spec.yaml")
            tracker.log_params(parent, {"description": spec.description or "", "design": spec.search.design})
        session = Session(spec, stores, study, tracker, experiment_id, parent)
        failed = session.housekeeping()
    except KeyboardInterrupt:
        tracker.close_run(parent, "KILLED")
        raise
    if failed and console:
        console.print(f"closed trials left RUNNING by a dead process as FAILED: {failed} (they run again)")
    return session


def optimize(session: Session, objective: Objective, *, on_trial_end: TrialCallback | None = None) -> bool:
    """Run trials until the design is done (or ``search.timeout``); True when it is done.

    After every trial the study's housekeeping runs, so a trial of a dead worker or node (same host: by pid;
    elsewhere: by heartbeat) is failed and enqueued again for this process. When nothing is left to claim but
    trials are still RUNNING elsewhere, this process waits for them and takes over any that die — a lone worker
    of a cluster never reports a study as done while part of it was lost. Ctrl-C propagates as KeyboardInterrupt.
    """
    spec, study = session.spec, session.study
    deadline = None if spec.search.timeout is None else time.monotonic() + spec.search.timeout

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial_end is not None:
            on_trial_end(study, trial)
        session.housekeeping()
        if nothing_left(study, spec):
            study.stop()

    hold_interrupts_around_ask(study)  # a Ctrl-C right after ask() must not leave the trial RUNNING
    while True:
        if not nothing_left(study, spec):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                with infrastructure_first():  # a store that gave up inside Optuna's tell: exit 75, not a traceback
                    study.optimize(objective, catch=(TrialFailedError,), callbacks=[callback], timeout=left,
                                   gc_after_trial=True)
            finally:
                deliver_held_interrupt()  # never leave Ctrl-C held past the trial loop
        session.housekeeping()
        if progress(study, spec).finished or (deadline is not None and time.monotonic() >= deadline):
            break
        if not nothing_left(study, spec):
            continue
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            break  # nothing running anywhere and nothing to claim: incomplete (e.g. search timeout, failures)
        time.sleep(STRAGGLER_POLL_S)
    return progress(study, spec).finished
