"""What a study records, named once: Optuna trial/study attributes and MLflow tags, plus the helpers that read them.

Every name a study persists (trial and study attributes, MLflow run and experiment tags, metric names, model-version
tags and the registry alias) is a constant here; product code and tests import it rather than retype it
(``tests/platform_tests/test_records.py`` fails on a persisted name spelled out elsewhere).

The study runner writes these names (``study/objective.py``, ``study/lifecycle.py``, ``study/tracking.py``); the
summary, promotion, the dashboards and :func:`sasa_lab.load_results` read them. This module is the only contract
between writer and readers, so it sits at the bottom of the package and imports nothing of it.

Exactly-once accounting is by *(design point, seed)*: a pair is **done** when a trial for it is COMPLETE, PRUNED,
or a *genuine failure*; trials marked ``spurious`` (an empty grid queue, a raced duplicate) stand for no design point
at all.

**Two kinds of failure.** A *genuine failure* is the trial's own — its model, data or numbers (a NaN loss, a shape
error, out of memory with its batch size): rerunning would fail again, so it settles the pair. It is FAIL with
``ATTR_FAIL`` (its reason) and without ``ATTR_INFRA_FAIL`` (:func:`is_genuine_failure`). A failure of the
*infrastructure* — a tracking server or database unreachable, refusing, resetting or timing out, HTTP 5xx/429, a
database ``OperationalError``, no space left on a device, a lost node — is never genuine: the trial is FAIL with
``ATTR_INFRA_FAIL`` (what failed; for a lost worker or node, written by the recovery that found it) and no
``ATTR_FAIL``, so its pair is missing again and runs again (:func:`is_infrastructure_failure`). Which exceptions are
infrastructure is decided by ``stores.faults.infrastructure_cause``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState

# --- Optuna trial user attributes ------------------------------------------------------------------------------
ATTR_POINT = "design_point"  # str: the design point's key, e.g. "window_size=3"
ATTR_SEED = "seed"  # int
ATTR_RUN = "mlflow_run_id"  # str: the trial's child MLflow run
ATTR_WORKER = "worker"  # "host:pid" of the process that runs the trial
ATTR_FAIL = "fail_reason"  # str: a genuine failure (rerunning would fail again)
ATTR_INFRA_FAIL = "infra_failure"  # str: the infrastructure failure that stopped the trial (the pair runs again)
ATTR_INTERRUPTED = "interrupted"  # bool: Ctrl-C; the pair runs again
ATTR_ORIGIN = "origin"  # ORIGIN_SAMPLED for trials whose point the sampler chose
ORIGIN_SAMPLED = "sampled"  # the value of ATTR_ORIGIN
ATTR_SPURIOUS = "spurious"  # bool: the trial stands for no design point
ATTR_PHASE = "phase"  # PHASE_CONFIRM on a confirmation-round trial (a finalist on a fresh seed; never pruned)
PHASE_CONFIRM = "confirm"  # the value of ATTR_PHASE
ATTR_REPEAT = "repeat"  # bool: a sampled trial that proposed an already-sampled design point (spurious too)
ATTR_PARAMS = "params"  # int: parameter count of the model
ATTR_FLOPS = "flops"  # int: FLOPs per image (1 multiply-add = 2 FLOPs)
ATTR_MODEL_CONFIG = "model_config"  # dict: the model's resolved ``create_model`` options
ATTR_MODEL_URI = "model_uri"  # str: ``models:/<id>`` of the logged backbone
ATTR_TEST = "test"  # dict: test metrics of the best checkpoint, e.g. {"test/acc": 0.9}
ATTR_THROUGHPUT = "throughput"  # float: training images per second
ATTR_LATENCY = "latency_ms"  # float: median batch-1 forward pass (second objective "latency")
ATTR_PRUNED_AT = "pruned_at_epoch"  # int: epochs trained when the pruner stopped the trial
ATTR_POINT_PRUNED = "point_pruned"  # bool: not trained (or stopped) because another seed of its point was pruned
ATTR_SECONDS = "trial_seconds"  # float: wall time of the whole trial
ATTR_EXAMPLES = "examples"  # dict: examples per split, {"train": N, "val": N, "test": N} (accuracies are k/N)
ATTR_NUMERICS = "numerics"  # dict: what the trial's numbers depend on besides spec and seed (training/numerics.py)
# The training outcome, one attribute per field of ``training.trainer.TrainOutcome`` that is recorded.
ATTR_RESUMED_FROM = "resumed_from"  # the checkpoint an interrupted trial resumed from (or None)
ATTR_BEST_VALUE = "best_value"  # the objective metric's best epoch value
ATTR_BEST_EPOCH = "best_epoch"
ATTR_EPOCHS_RUN = "epochs_run"
ATTR_FIT_SECONDS = "fit_seconds"
ATTR_TEST_SECONDS = "test_seconds"
ATTR_WORLD_SIZE = "world_size"  # DDP processes that trained the trial
ATTR_DATA_WAIT = "data_wait_fraction"  # share of the training loop's wall time spent waiting for batches (0–1)
OUTCOME_ATTRS = (ATTR_RESUMED_FROM, ATTR_BEST_VALUE, ATTR_BEST_EPOCH, ATTR_EPOCHS_RUN, ATTR_FIT_SECONDS,
                 ATTR_TEST_SECONDS, ATTR_WORLD_SIZE, ATTR_DATA_WAIT)

# --- metric names: ``<split>/<stat>``, logged each epoch by ``training.classifier.SasaClassifier`` ---------------
SPLIT_TRAIN = "train"
SPLIT_VAL = "val"
SPLIT_TEST = "test"
SPLITS = (SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST)  # the stages the classifier logs, in order
STAT_LOSS = "loss"  # mean cross-entropy over the split's examples
STAT_ACC = "acc"  # top-1 accuracy (a fraction)
STAT_ACC_TOP5 = "acc_top5"  # top-5 accuracy (top-k with k = min(5, classes))
STATS = (STAT_LOSS, STAT_ACC, STAT_ACC_TOP5)  # what the classifier logs for every split


def metric_name(split: str, stat: str) -> str:
    """``<split>/<stat>``, e.g. ``val/acc``: the name the classifier logs (Lightning, MLflow, the spec)."""
    return f"{split}/{stat}"


LOGGED_METRICS = tuple(metric_name(split, stat) for split in SPLITS for stat in STATS)  # the spec's metric choices
METRIC_TRAIN_LOSS = metric_name(SPLIT_TRAIN, STAT_LOSS)
METRIC_VAL_ACC = metric_name(SPLIT_VAL, STAT_ACC)  # the default objective
METRIC_VAL_LOSS = metric_name(SPLIT_VAL, STAT_LOSS)
METRIC_TEST_ACC = metric_name(SPLIT_TEST, STAT_ACC)  # a key of ATTR_TEST; verified by promotion
METRIC_TEST_LOSS = metric_name(SPLIT_TEST, STAT_LOSS)  # a key of ATTR_TEST; verified by promotion
# MLflow metrics of a trial run besides the classifier's (the study runner logs them, ``study/objective.py``)
METRIC_LR = "train/lr"  # the learning rate, per epoch
METRIC_PARAMS = "model/params"  # ATTR_PARAMS
METRIC_FLOPS = "model/flops"  # ATTR_FLOPS
METRIC_THROUGHPUT = "throughput"  # ATTR_THROUGHPUT
METRIC_FIT_SECONDS = "time/fit_s"  # the training loop's wall time
METRIC_DATA_WAIT = "time/data_wait_frac"  # MLflow metric of a trial run: its ``data_wait_fraction``
METRIC_BEST_PREFIX = "best/"  # ``best/<objective metric>``: the best epoch's value
# MLflow metrics of the parent run, per decision round (``study/rounds.py``): ``decisions/<verdict>`` counts
METRIC_DECISIONS_PREFIX = "decisions/"
METRIC_ENQUEUED = "decisions/enqueued"  # pairs the round enqueued

# --- Optuna study user attributes ------------------------------------------------------------------------------
STUDY_FINGERPRINT = "sasa.spec_fingerprint"
STUDY_SPEC = "sasa.spec"  # the resolved spec (passwords redacted) the trials ran
STUDY_PARENT_RUN = "sasa.mlflow_parent_run_id"
STUDY_EXPERIMENT = "sasa.mlflow_experiment_id"
STUDY_ROUNDS = "sasa.decision_rounds"  # list of dicts: one per adaptive-seed decision round (see study/rounds.py)
STUDY_FINALISTS = "sasa.finalists"  # list of dicts {key, params, search_value, reference}: the confirmation round's
#                                    design points, chosen once when the search phase ends (study/confirm.py)
ARCHIVE_MARK = ".archived-"  # ``--fresh`` renames a stored study to NAME.archived-<time>

# --- MLflow run tags -------------------------------------------------------------------------------------------
TAG_ROLE = "sasa.role"  # ROLE_STUDY (parent run) or ROLE_TRIAL (child run)
ROLE_STUDY = "study"  # TAG_ROLE of the study's parent run
ROLE_TRIAL = "trial"  # TAG_ROLE of a trial's child run
TAG_STUDY = "sasa.study"
TAG_TRIAL = "sasa.trial_number"
TAG_POINT = "sasa.design_point"
TAG_SEED = "sasa.seed"
TAG_COMMIT = "sasa.git_commit"
TAG_FAIL = "sasa.fail_reason"
FAIL_INTERRUPTED = "interrupted"  # TAG_FAIL of a child run stopped by Ctrl-C (the pair runs again)
TAG_STORAGE = "sasa.optuna_storage"  # on the parent run, password redacted
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own nesting tag

# --- MLflow's own tags: they fill the UI's columns and choose its view ------------------------------------------
TAG_RUN_NAME = "mlflow.runName"
TAG_SOURCE_NAME = "mlflow.source.name"  # the Source column
TAG_SOURCE_TYPE = "mlflow.source.type"  # LOCAL: a command run from a checkout
TAG_SOURCE_COMMIT = "mlflow.source.git.commit"  # a bare commit hash (``sasa.git_commit`` also says "-dirty")
SOURCE_NAME = "python -m platform.study"
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"  # experiment tag: which of the UI's views the experiment is
EXPERIMENT_KIND_TRAINING = "custom_model_development"  # "model training" (MLflow 3's default view is GenAI)
TRAINING_VIEW_QUERY = "workflowType=machine_learning"  # URL parameter that opens the UI's model-training view
PARENT_METRIC_PREFIX = "table/"  # parent-run metrics: the ablation table, ``table/<point>/<stat>``
TAG_NOTE = "mlflow.note.content"  # experiment and run tag: the UI's description (markdown)
TABLE_ARTIFACT = "ablation_table.json"  # parent run: the ablation table as an MLflow table (replaced, not appended)
TAG_LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"  # run tag: MLflow's list of the run's tables ({"path", "type"})
LOGGED_TABLE_TYPE = "table"  # ... the type of a table in it
TAG_RESULTS_DIGEST = "sasa.results_digest"  # parent run: digest of the trials the published table/report show
# The report on the parent run (``python -m dashboards``, the end-of-study report): files, numbers and tags
REPORT_ARTIFACTS = "report"  # the artifact folder of report.html, table.csv, table.md and the figures
REPORT_PREFIX = "report/"  # parent-run metrics and tags of the report: ``report/<point>/<column>``
TAG_REPORT_TEST = "report/test"  # the test that decided the verdicts
TAG_REPORT_REFERENCE = "report/reference"  # the note on the reference design point
TAG_REPORT_BEST = "report/best"  # the best design point
REPORT_VERDICT = "verdict"  # ``report/<point>/verdict``: the point's verdict
TAG_DATASET_CONTEXT = "mlflow.data.context"  # tag of a run's dataset input (the UI's Dataset column) ...
DATASET_CONTEXT_TRAINING = "training"  # ... its value: the data the run trained on

# --- MLflow Model Registry: what ``python -m platform.promote`` writes ------------------------------------------
# A promoted model is ``MODEL_NAME_PREFIX<study>`` under ALIAS_CHAMPION; the registered model carries TAG_STUDY.
# Its versions carry the run tags TAG_STUDY, TAG_TRIAL, TAG_POINT, TAG_SEED, TAG_COMMIT and these:
MODEL_NAME_PREFIX = "sasa-"  # the default registered model name: sasa-<study>
ALIAS_CHAMPION = "champion"  # the default alias
VERSION_RUN = "sasa.mlflow_run_id"  # the trial's MLflow run (promotion reads it back)
VERSION_MODEL_URI = "sasa.model_uri"  # ``models:/<id>`` the version was registered from
VERSION_METRIC = "sasa.metric"  # the objective metric (promotion compares alias holders by it)
VERSION_VALUE = "sasa.metric_value"  # the champion's objective value, repr()
VERSION_DIRECTION = "sasa.direction"  # maximize or minimize
VERSION_RULE = "sasa.rule"  # the winner rule that applied
VERSION_PREFER = "sasa.prefer"  # which rule chose the champion: cheapest, mean, best-trial, pareto, trial (--trial)
VERSION_PARAMS = "sasa.params"  # ATTR_PARAMS
VERSION_FLOPS = "sasa.flops"  # ATTR_FLOPS
VERSION_MODEL_CONFIG = "sasa.model_config"  # ATTR_MODEL_CONFIG, JSON
VERSION_DATA_SOURCE = "sasa.data.source"  # the spec's data.source
VERSION_DATA_NAME = "sasa.data.name"  # the data set's name (or path, or source)
VERSION_POINT_MEAN = "sasa.point_mean"  # seeded ablation: the winning point's mean objective
VERSION_POINT_SEEDS = "sasa.point_seeds"  # seeded ablation: how many complete seeds that mean covers
VERSION_SECOND_PREFIX = "sasa.second."  # ``sasa.second.<params|flops|latency>``: the second objective's value
VERSION_DESIGN_PREFIX = "sasa.design."  # ``sasa.design.<parameter>``: the design point's values, JSON
VERSION_VERIFY = "sasa.verification"  # VERIFY_PENDING, VERIFY_PASSED or VERIFY_FAILED (promotion reads it back)
VERSION_VERIFY_TOL = "sasa.verification_tolerance"  # the tolerance of the last verification, repr()
VERSION_VERIFIED = "sasa.verified"  # the verification's comparison in one line (or why it failed)
VERSION_VERIFIED_ACC = "sasa.verified.test.acc"  # the re-evaluated test accuracy
VERSION_VERIFIED_LOSS = "sasa.verified.test.loss"  # the re-evaluated test loss
VERSION_INPUT_MEAN = "sasa.input_mean"  # JSON list: the normalisation inside the model (training split's mean)
VERSION_INPUT_STD = "sasa.input_std"  # JSON list: ... and its std
VERIFY_PENDING = "pending"
VERIFY_PASSED = "passed"
VERIFY_FAILED = "failed"


def version_metric_tag(metric: str) -> str:
    """The model-version tag of a logged test metric: ``test/acc`` → ``sasa.test.acc``."""
    return "sasa." + metric.replace("/", ".")


# --- reading trials -------------------------------------------------------------------------------------------


def is_spurious(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get(ATTR_SPURIOUS))


def design_point(trial: FrozenTrial) -> str | None:
    """The trial's design point key, or None (spurious trials and queue entries without one)."""
    if is_spurious(trial) or ATTR_POINT not in trial.user_attrs:
        return None
    return str(trial.user_attrs[ATTR_POINT])


def pair_of(trial: FrozenTrial) -> tuple[str, int] | None:
    """The trial's (design point, seed), or None for trials that stand for no design point."""
    point, seed = design_point(trial), trial.user_attrs.get(ATTR_SEED)
    return None if point is None or seed is None else (point, int(seed))


def is_genuine_failure(trial: FrozenTrial) -> bool:
    """The trial's own failure (FAIL with a reason, not the infrastructure's): it settles its pair.

    Not genuine: an infrastructure failure (``ATTR_INFRA_FAIL``), an interrupted trial, a dead process's trial."""
    attrs = trial.user_attrs
    return trial.state == TrialState.FAIL and ATTR_FAIL in attrs and ATTR_INFRA_FAIL not in attrs


is_failure = is_genuine_failure  # the older name, kept for callers


def is_infrastructure_failure(trial: FrozenTrial) -> bool:
    """FAIL because a store, the disk or the node failed (``ATTR_INFRA_FAIL``): its pair runs again."""
    return trial.state == TrialState.FAIL and ATTR_INFRA_FAIL in trial.user_attrs


def is_confirmation(trial: FrozenTrial) -> bool:
    """A trial of the confirmation round (a finalist re-run on a fresh seed)."""
    return trial.user_attrs.get(ATTR_PHASE) == PHASE_CONFIRM


def is_done(trial: FrozenTrial) -> bool:
    """Does this trial settle its (design point, seed)? COMPLETE, PRUNED, or a genuine failure (never an
    infrastructure failure, an interrupted trial or a dead process's trial: those pairs run again)."""
    if is_spurious(trial):
        return False
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or is_genuine_failure(trial)


def trials_by_point(trials: Iterable[FrozenTrial], *, started_only: bool = False) -> dict[str, list[FrozenTrial]]:
    """Trials grouped by design point key, in order of first appearance (spurious trials left out).

    ``started_only`` also leaves out queue entries (WAITING) that no worker has claimed yet.
    """
    groups: dict[str, list[FrozenTrial]] = {}
    for trial in trials:
        key = design_point(trial)
        if key is None or (started_only and trial.state == TrialState.WAITING):
            continue
        groups.setdefault(key, []).append(trial)
    return groups


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the runner recorded it, typed (a missing attribute reads as None)."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING or WAITING
    design_point: str | None
    seed: int | None
    values: tuple[float, ...]
    params: int | None
    flops: int | None
    test: dict[str, float] = field(default_factory=dict)
    throughput: float | None = None
    mlflow_run_id: str | None = None
    model_uri: str | None = None
    fail_reason: str | None = None
    spurious: bool = False
    optuna_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        attrs = trial.user_attrs
        seed, params, flops = attrs.get(ATTR_SEED), attrs.get(ATTR_PARAMS), attrs.get(ATTR_FLOPS)
        throughput = attrs.get(ATTR_THROUGHPUT)
        return cls(
            number=trial.number,
            state=trial.state.name,
            design_point=design_point(trial),
            seed=None if seed is None else int(seed),
            values=tuple(float(v) for v in trial.values or ()),
            params=None if params is None else int(params),
            flops=None if flops is None else int(flops),
            test={str(k): float(v) for k, v in (attrs.get(ATTR_TEST) or {}).items()},
            throughput=None if throughput is None else float(throughput),
            mlflow_run_id=attrs.get(ATTR_RUN),
            model_uri=attrs.get(ATTR_MODEL_URI),
            fail_reason=attrs.get(ATTR_FAIL),
            spurious=is_spurious(trial),
            optuna_params=dict(trial.params),
        )

    @property
    def value(self) -> float | None:
        """The (first) objective value; None unless the trial is COMPLETE."""
        return self.values[0] if self.values else None

    @property
    def test_acc(self) -> float | None:
        return self.test.get(METRIC_TEST_ACC)
