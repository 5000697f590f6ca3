"""The Optuna objective: one trial = one design point × one seed, trained with Lightning, tracked in MLflow.

Statuses mirror each other: COMPLETE ↔ FINISHED, PRUNED ↔ KILLED, FAIL ↔ FAILED. A trial that raises (NaN loss,
out of memory, an invalid combination of options) is recorded FAIL with its reason and the study goes on
(:class:`TrialFailedError` is in the study's ``catch``): a *genuine* failure, which settles its pair. A failure of
the infrastructure (``stores.faults.infrastructure_cause``: a store away longer than the outage budget, a full
disk) is never genuine: the trial is FAIL with ``ATTR_INFRA_FAIL`` only, its pair runs again, and the study stops
cleanly (``stores.faults.InfrastructureError``; a rerun resumes from the trial's last checkpoint). Ctrl-C fails the
running trial as *interrupted* and stops the study; an interrupted trial is retried at the next start.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import torch
from optuna.trial import TrialState

import sasa

from ..data.datamodule import ImageDataModule
from ..labels import short_label
from ..records import (
    ATTR_EXAMPLES,
    ATTR_FAIL,
    ATTR_FLOPS,
    ATTR_INFRA_FAIL,
    ATTR_INTERRUPTED,
    ATTR_LATENCY,
    ATTR_MODEL_CONFIG,
    ATTR_MODEL_URI,
    ATTR_NUMERICS,
    ATTR_ORIGIN,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_POINT_PRUNED,
    ATTR_PRUNED_AT,
    ATTR_RUN,
    ATTR_SECONDS,
    ATTR_SEED,
    ATTR_SPURIOUS,
    ATTR_TEST,
    ATTR_THROUGHPUT,
    ATTR_WORKER,
    FAIL_INTERRUPTED,
    METRIC_BEST_PREFIX,
    METRIC_DATA_WAIT,
    METRIC_FIT_SECONDS,
    METRIC_FLOPS,
    METRIC_PARAMS,
    METRIC_THROUGHPUT,
    ORIGIN_SAMPLED,
    OUTCOME_ATTRS,
    TAG_COMMIT,
    TAG_FAIL,
    TAG_POINT,
    TAG_SEED,
    TAG_STUDY,
    TAG_TRIAL,
    is_confirmation,
    is_done,
    pair_of,
)
from ..search import DesignPoint, build_model, resolve, suggest
from ..spec.study_spec import StudySpec
from ..stores.faults import InfrastructureError, infrastructure_cause, no_space_note
from ..training.numerics import numerics_record
from ..training.pruning import OptunaPruning
from ..training.trainer import runtime_settings, train_trial
from .claims import claim_sampled_point
from .ddp import DdpTrial, ddp_trial
from .durable import Finished, journal_of, load_finished, replay, save_finished
from .interrupts import deliver_held_interrupt
from .tracking import MlflowEpochLogger, Tracker
from .trial_facts import evaluated_examples, measure_latency, worker_id


class TrialFailedError(Exception):
    """Raised by the objective after recording a failed trial; the study catches it and goes on."""


@dataclass
class TrialContext:
    """What every trial of a study shares (built once per worker by the study runner)."""

    spec: StudySpec
    tracker: Tracker
    experiment_id: str
    parent_run_id: str
    datamodule_factory: Callable[[int, int], ImageDataModule]  # (batch_size, seed) -> data module, set up
    data_info: dict[str, Any]  # ``ImageDataModule.dataset_info()``
    data_cache: Path
    work_root: Path
    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    commit: str = ""
    progress_bar: bool = True


class Objective:
    """Callable objective for ``study.optimize``."""

    def __init__(self, context: TrialContext) -> None:
        self.ctx = context

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        deliver_held_interrupt()  # a Ctrl-C since ask(): raised here, where Optuna records the trial as FAIL
        started = time.perf_counter()
        spec, ctx = self.ctx.spec, self.ctx
        if spec.search.design == "grid" and ATTR_SEED not in trial.user_attrs:
            # Another worker took the last enqueued grid point between our check and Optuna's ask().
            trial.set_user_attr(ATTR_SPURIOUS, True)
            trial.study.stop()
            raise optuna.TrialPruned("no grid point left for this worker")
        point = suggest(trial, spec)
        sampled = ATTR_SEED not in trial.user_attrs
        if sampled and not claim_sampled_point(trial, point.key):
            # The sampler proposed a design point the study already has (or another worker drew it at the same
            # moment and goes first): step aside before it counts toward n_trials or enqueues its seeds (a repeat
            # adds no information: the point's seeds run once). The claim marked it spurious, a repeat.
            raise optuna.TrialPruned(f"{point.key} was already sampled; asking the sampler again")
        seed = int(trial.user_attrs[ATTR_SEED]) if not sampled else spec.search.initial_seeds[0]
        if _taken_by_another(trial, point.key, seed):
            # Two enqueues of one (design point, seed) raced (e.g. two machines recovering the same dead trial):
            # the lower-numbered trial runs it, this one steps aside without training.
            trial.set_user_attr(ATTR_POINT, point.key)
            trial.set_user_attr(ATTR_SPURIOUS, True)
            raise optuna.TrialPruned(f"{point.key} seed={seed} is already taken by another trial")
        if sampled:
            self._count_sampled(trial, point)
        trial.set_user_attr(ATTR_POINT, point.key)
        confirming = is_confirmation(trial)  # a finalist on a fresh seed: never pruned by a search-phase rule
        if not confirming and point_pruned(trial.study, point.key, trial.number):
            # A design point is pruned as a whole: its other seeds are not trained (issue: pruning respects seeds).
            trial.set_user_attr(ATTR_POINT_PRUNED, True)
            raise optuna.TrialPruned(f"{point.key}: another seed of this design point was pruned")
        trial.set_user_attr(ATTR_WORKER, worker_id())
        run_id = ctx.tracker.start_child_run(
            ctx.experiment_id,
            ctx.parent_run_id,
            name=f"{short_label(point.key)} seed={seed} #{trial.number}",  # design point first, unique by number
            tags={
                TAG_STUDY: spec.name,
                TAG_TRIAL: str(trial.number),
                TAG_POINT: point.key,
                TAG_SEED: str(seed),
                TAG_COMMIT: ctx.commit,
            },
        )
        trial.set_user_attr(ATTR_RUN, run_id)
        try:
            values = self._run(trial, point, seed, run_id)
        except optuna.TrialPruned:
            ctx.tracker.close_run(run_id, "KILLED")
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            # Lightning turns Ctrl-C into sys.exit(1); give Optuna the KeyboardInterrupt it handles.
            stop_waiting(ctx.tracker, trial.study)  # in an outage: stop now, the rerun closes what is left
            _best_effort(lambda: trial.set_user_attr(ATTR_INTERRUPTED, True),
                         lambda: ctx.tracker.set_tags(run_id, {TAG_FAIL: FAIL_INTERRUPTED}),
                         lambda: ctx.tracker.close_run(run_id, "FAILED"))
            raise KeyboardInterrupt from exc
        except Exception as exc:
            if (cause := infrastructure_cause(exc)) is not None:  # never the trial's own: its pair runs again
                cause = no_space_note(exc, ctx.work_root) or cause
                _infrastructure_failed(trial, ctx.tracker, run_id, cause)
                if isinstance(exc, InfrastructureError):
                    raise
                raise InfrastructureError(f"trial #{trial.number} was stopped by the infrastructure: {cause}") from exc
            reason = _reason(exc)
            trial.set_user_attr(ATTR_FAIL, reason)
            ctx.tracker.set_tags(run_id, {TAG_FAIL: reason})
            ctx.tracker.client.log_text(run_id, traceback.format_exc(), "traceback.txt")
            ctx.tracker.close_run(run_id, "FAILED")
            raise TrialFailedError(reason) from exc
        ctx.tracker.close_run(run_id, "FINISHED")
        trial.set_user_attr(ATTR_SECONDS, time.perf_counter() - started)
        return values

    def _count_sampled(self, trial: optuna.Trial, point: DesignPoint) -> None:
        """A sampled trial runs the first seed and enqueues the others (enqueued trials carry their seed)."""
        seeds = list(self.ctx.spec.search.initial_seeds)
        trial.set_user_attr(ATTR_SEED, seeds[0])
        trial.set_user_attr(ATTR_ORIGIN, ORIGIN_SAMPLED)
        for seed in seeds[1:]:
            trial.study.enqueue_trial(point.optuna_params, user_attrs={ATTR_SEED: seed, ATTR_POINT: point.key})

    def _run(self, trial: optuna.Trial, point: DesignPoint, seed: int, run_id: str) -> float | tuple[float, float]:
        spec, ctx = self.ctx.spec, self.ctx
        _, train_spec = resolve(spec, point)
        info = ctx.data_info
        pl.seed_everything(seed, workers=True, verbose=False)  # the seed fixes the initial weights too
        net = build_model(spec, point, num_classes=info["num_classes"], in_channels=info["channels"])
        input_size = (1, info["channels"], info["image_size"], info["image_size"])
        n_params = sum(p.numel() for p in net.parameters())
        flops = sasa.count_flops(net, input_size)
        numerics = numerics_record(train_spec, accelerator=ctx.accelerator, backend=net.config.get("backend", "auto"))
        resolved = {"model": {**net.config}, "train": train_spec.model_dump(), "data": info, "seed": seed,
                    "runtime": {**runtime_settings(train_spec, ctx.accelerator), **numerics}}
        ctx.tracker.log_params(run_id, resolved)
        ctx.tracker.log_dataset(run_id, spec.data, info)
        ctx.tracker.log_metrics(run_id, {METRIC_PARAMS: n_params, METRIC_FLOPS: flops})
        examples = evaluated_examples(info, train_spec.batch_size, train_spec.limit_val_batches, ctx.devices)
        for key, value in {ATTR_PARAMS: n_params, ATTR_FLOPS: flops, ATTR_MODEL_CONFIG: net.config,
                           ATTR_EXAMPLES: examples, ATTR_NUMERICS: numerics}.items():
            trial.set_user_attr(key, value)

        datamodule = ctx.datamodule_factory(train_spec.batch_size, seed)
        monitor, direction = spec.objective.metric, spec.objective.direction
        callbacks: list[pl.Callback] = [MlflowEpochLogger(ctx.tracker, run_id)]
        pruning = None
        if spec.pruner.type != "none" and not spec.objective.second and not is_confirmation(trial):
            pruning = OptunaPruning(trial, monitor, lambda: point_pruned(trial.study, point.key, trial.number))
        if pruning is not None:
            callbacks.append(pruning)
        work_dir = ctx.work_root / f"{_safe(point.key)}-seed{seed}"
        ddp = DdpTrial(
            spec=spec.resolved_dict(), optuna_params=point.optuna_params, seed=seed, work_dir=str(work_dir),
            data_cache=str(ctx.data_cache), data_info=info, pruning=pruning is not None,
            threads=torch.get_num_threads(), accelerator=ctx.accelerator, devices=ctx.devices,
        )
        example, mean, std = None, datamodule.mean, datamodule.std
        if (finished := load_finished(work_dir)) is None:
            start = len(journal_of(ctx.tracker, run_id))
            with ddp_trial(ddp) if ctx.devices > 1 else nullcontext():
                outcome, module = train_trial(
                    net, datamodule, train=train_spec, monitor=monitor,
                    mode="max" if direction == "maximize" else "min", seed=seed, work_dir=work_dir,
                    callbacks=callbacks, accelerator=ctx.accelerator, devices=ctx.devices, strategy=ctx.strategy,
                    progress_bar=ctx.progress_bar,
                )
            net = module.net
            if outcome.best_value is not None and (pruning is None or pruning.pruned_at is None):  # finished
                example = datamodule.example_batch(2)  # saved before the stores record it: never lost
                save_finished(work_dir, Finished(outcome, net, example, mean, std,
                                                 journal_of(ctx.tracker, run_id)[start:]))
        else:  # trained by a run whose stores could not record it: record that result, do not train again
            outcome, net, example, mean, std = finished.outcome, finished.net, finished.example, finished.mean, \
                finished.std
            replay(ctx.tracker.client, run_id, finished.batches)
        for key in OUTCOME_ATTRS:
            trial.set_user_attr(key, getattr(outcome, key))
        trial.set_user_attr(ATTR_THROUGHPUT, outcome.throughput)
        trial.set_user_attr(ATTR_TEST, outcome.test_metrics)
        ctx.tracker.log_metrics(
            run_id, {METRIC_THROUGHPUT: outcome.throughput, METRIC_FIT_SECONDS: outcome.fit_seconds,
                     METRIC_DATA_WAIT: outcome.data_wait_fraction}
        )
        # The test metrics are the best checkpoint's: logged at its epoch, where the logged model links them.
        best_epoch = outcome.best_epoch if outcome.best_epoch is not None else 0
        ctx.tracker.log_metrics(run_id, outcome.test_metrics, step=best_epoch)
        if outcome.best_value is not None:
            ctx.tracker.log_metrics(run_id, {f"{METRIC_BEST_PREFIX}{monitor}": outcome.best_value})
        if pruning is not None and pruning.pruned_at is not None:
            trial.set_user_attr(ATTR_POINT_PRUNED if pruning.by_point else ATTR_PRUNED_AT,
                                True if pruning.by_point else pruning.pruned_at)
            shutil.rmtree(work_dir, ignore_errors=True)
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
        if outcome.best_value is None:
            raise FloatingPointError(f"{monitor} was never finite; nothing to report")

        example = datamodule.example_batch(2) if example is None else example
        if outcome.resumed_from is not None:  # a best epoch before the resume was logged by an earlier run only
            ctx.tracker.log_metrics(run_id, {monitor: outcome.best_value}, step=best_epoch)  # the model's val metric
        trial.set_user_attr(ATTR_MODEL_URI, ctx.tracker.log_backbone(run_id, net, example, step=best_epoch,
                                                                     mean=mean, std=std))
        shutil.rmtree(work_dir, ignore_errors=True)
        if not spec.objective.second:
            return outcome.best_value
        second = {"params": float(n_params), "flops": float(flops)}.get(spec.objective.second)
        if second is None:  # latency
            second = measure_latency(net.cpu(), example[:1].cpu())
            trial.set_user_attr(ATTR_LATENCY, second)
        return outcome.best_value, second


def point_pruned(study: optuna.Study, key: str, number: int) -> bool:
    """Was another trial of design point ``key`` pruned? (then the whole point is pruned)"""
    for other in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
        attrs = other.user_attrs
        if other.number != number and not attrs.get(ATTR_SPURIOUS) and attrs.get(ATTR_POINT) == key:
            return True
    return False


def _taken_by_another(trial: optuna.Trial, key: str, seed: int) -> bool:
    """Is this (design point, seed) done, or running under a lower trial number? (exactly-once under races)"""
    for other in trial.study.get_trials(deepcopy=False):
        if other.number == trial.number or pair_of(other) != (key, seed):
            continue
        if is_done(other) or (other.state == TrialState.RUNNING and other.number < trial.number):
            return True
    return False


def _infrastructure_failed(trial: optuna.Trial, tracker: Tracker, run_id: str, cause: str) -> None:
    """Record an infrastructure failure where the stores still take it (``ATTR_INFRA_FAIL``, never ``ATTR_FAIL``:
    the pair stays missing); a store that is away is left alone (the rerun closes what is left RUNNING)."""
    _best_effort(lambda: trial.set_user_attr(ATTR_INFRA_FAIL, cause[:500]),
                 lambda: tracker.set_tags(run_id, {TAG_FAIL: cause[:500]}),
                 lambda: tracker.close_run(run_id, "FAILED"))


def _best_effort(*writes: Callable[[], object]) -> None:
    """Each write in turn; one that a store does not take is skipped (the rerun settles what it left)."""
    for write in writes:
        try:
            write()
        except Exception:  # the store that failed: the study stops and the rerun settles it
            continue


def stop_waiting(tracker: Tracker, study: optuna.Study) -> None:
    """Ctrl-C: the stores' calls from now on try once (``Patience.stop_waiting``), so an outage cannot hold the
    stop for up to the outage budget."""
    storage = getattr(study._storage, "_backend", study._storage)  # Optuna may wrap it in its cache
    for patience in (getattr(tracker, "patience", None), getattr(storage, "patience", None)):
        if patience is not None:
            patience.stop_waiting()


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "=.-_," else "_" for c in key)[:120]


def _reason(exc: BaseException) -> str:
    message = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in message.lower():
        message = f"out of memory: {message}"
    return message.splitlines()[0][:500] if message else type(exc).__name__
