"""``--workers N``: N processes share one study (Optuna storage + MLflow parent run) on one machine.

One real study with two workers on the default SQLite stores: a grid of two learning rates × two seeds where the
huge rate makes training diverge (non-finite loss). Checked: every pair runs exactly once, the two workers really
ran side by side, each diverged trial is FAIL with its reason (in Optuna and MLflow) and is not retried, the
output is prefixed per worker, and the MLflow runs nest under the one parent run. The worker plan (threads per
worker, GPUs per worker) is a pure function, checked with fake machines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import (
    ATTR_FAIL,
    ATTR_NUMERICS,
    ATTR_POINT,
    ATTR_RUN,
    ATTR_WORKER,
    METRIC_TEST_ACC,
    METRIC_VAL_ACC,
    STUDY_PARENT_RUN,
    TAG_FAIL,
    TAG_POINT,
)
from platform.stores import open_storage
from platform.study.devices import CPU_AUTO_MAX_WORKERS, DevicePlanError, cpu_auto_workers, plan_workers
from tests.platform_tests.studyrun import REPO, run_study, stores, tiny_spec, write_spec
from tests.scale_tests.accounting import (
    assert_complete_exactly_once,
    assert_nothing_left_running,
    assert_trials_match_runs,
    load_trials,
    mlflow_runs,
    pairs,
    real,
    split_runs,
)
from tests.support.limits import HANG_S

NAME = "two_workers"
SEARCH = {"design": "grid", "parameters": {"train.lr": [0.05, 1.0e6]}, "seeds": [0, 1]}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp(NAME)
    spec = write_spec(tmp / f"{NAME}.yaml", tiny_spec(NAME, search=SEARCH))
    return tmp, run_study(spec, tmp, "--workers", "2")


def _keys(tmp: Path) -> tuple[str, str]:
    """The design point keys as the runner writes them (read back rather than guessed from float formatting)."""
    storage, _ = stores(tmp)
    keys = sorted({t.user_attrs[ATTR_POINT] for t in real(load_trials(storage, NAME))})
    assert len(keys) == 2, keys
    good = [k for k in keys if "0.05" in k]
    assert len(good) == 1, keys
    return good[0], next(k for k in keys if k != good[0])


def test_two_workers_run_each_pair_once_side_by_side(two_workers: tuple[Path, subprocess.CompletedProcess]) -> None:
    tmp, result = two_workers
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    storage, _ = stores(tmp)
    trials = load_trials(storage, NAME)
    good, _ = _keys(tmp)
    assert_complete_exactly_once(trials, {(good, 0), (good, 1)})

    ran = [t for t in real(trials) if ATTR_WORKER in t.user_attrs]
    assert len({t.user_attrs[ATTR_WORKER] for t in ran}) == 2, "both workers should have run trials"
    overlapping = [
        (a.number, b.number) for a in ran for b in ran
        if a.user_attrs[ATTR_WORKER] != b.user_attrs[ATTR_WORKER] and a.datetime_start < b.datetime_complete
        and b.datetime_start < a.datetime_complete
    ]
    assert overlapping, "no two trials of different workers ran at the same time"
    lines = output.splitlines()
    assert any(line.startswith("[w0]") for line in lines) and any(line.startswith("[w1]") for line in lines)
    # Each trial records the threads it ran with: two workers share the cores (platform.training.numerics).
    for trial in ran:
        assert trial.user_attrs[ATTR_NUMERICS]["threads"] == max(1, (os.cpu_count() or 1) // 2)
        assert trial.user_attrs[ATTR_NUMERICS]["sasa_backend"] == "torch"


def test_diverging_trials_fail_with_a_reason_and_the_study_goes_on(
    two_workers: tuple[Path, subprocess.CompletedProcess],
) -> None:
    tmp, _ = two_workers
    storage, tracking = stores(tmp)
    trials = load_trials(storage, NAME)
    _, diverges = _keys(tmp)
    failed = pairs(trials, TrialState.FAIL)
    assert failed == {(diverges, 0): 1, (diverges, 1): 1}, failed  # recorded once, not retried
    client = MlflowClient(tracking_uri=tracking)
    runs = {r.info.run_id: r for r in mlflow_runs(client, NAME)}
    for trial in real(trials):
        if trial.state != TrialState.FAIL:
            continue
        reason = trial.user_attrs[ATTR_FAIL]
        assert "finite" in reason.lower() or "nan" in reason.lower(), reason
        run = runs[trial.user_attrs[ATTR_RUN]]
        assert run.info.status == "FAILED"
        assert run.data.tags[TAG_FAIL] == reason


def test_workers_share_one_parent_run(two_workers: tuple[Path, subprocess.CompletedProcess]) -> None:
    tmp, _ = two_workers
    storage, tracking = stores(tmp)
    trials = load_trials(storage, NAME)
    client = MlflowClient(tracking_uri=tracking)
    runs = mlflow_runs(client, NAME)
    parent, children = split_runs(runs)
    assert parent.info.status == "FINISHED"
    assert_trials_match_runs(trials, parent, children)
    assert_nothing_left_running(trials, runs)
    study = optuna.load_study(study_name=NAME, storage=storage)
    assert study.user_attrs[STUDY_PARENT_RUN] == parent.info.run_id
    good, _ = _keys(tmp)
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert sorted(r.data.tags[TAG_POINT] for r in finished) == [good, good]
    assert all(METRIC_TEST_ACC in r.data.metrics and METRIC_VAL_ACC in r.data.metrics for r in finished)


CLAIMER = """
import sys, time
from pathlib import Path
import optuna
from platform.stores import open_storage
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name="claims", storage=open_storage(sys.argv[1]))
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
while "k" in (trial := study.ask()).user_attrs:  # the enqueued trials carry k; a fresh trial means none is left
    print("claimed", trial.user_attrs["k"], flush=True)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_parallel_workers_never_claim_the_same_trial(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four processes pop enqueued trials at once through the runner's storage: each trial goes to exactly one.

    (A plain SQLite storage hands one waiting trial to several processes: its ``SELECT ... FOR UPDATE`` is a
    no-op there, so two workers would train the same design point side by side — optuna/optuna#4002.)
    """
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'claims.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("claims")
    study = optuna.create_study(study_name="claims", storage=open_storage(url))
    for k in range(40):
        study.enqueue_trial({}, user_attrs={"k": k})
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, url, str(go)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(4)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()  # all four start claiming at the same moment
        outputs = [proc.communicate(timeout=HANG_S)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    claims = Counter(int(line.split()[1]) for out in outputs for line in out.splitlines() if line.startswith("claimed"))
    assert sorted(claims) == list(range(40))
    twice = {k: n for k, n in claims.items() if n > 1}
    assert not twice, f"enqueued trials claimed by more than one process: {twice}"


def test_bad_worker_count_is_a_usage_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "bad.yaml", tiny_spec("bad_workers"))
    for count in ("0", "-1"):
        result = run_study(spec, tmp_path, "--workers", count, timeout=HANG_S, forked=True)  # a usage line: no imports
        assert result.returncode == 2, (count, result.stdout[-2000:], result.stderr[-2000:])
        assert "--workers" in result.stderr and count in result.stderr, result.stderr


def test_auto_workers_on_a_cpu_machine_are_single_threaded_per_core() -> None:
    base = {"accelerator": "auto", "devices": "auto", "cuda_count": 0, "devices_per_trial": 1}
    for cores, expected in ((1, 1), (2, 2), (6, 6), (32, CPU_AUTO_MAX_WORKERS)):
        for plans in (plan_workers(**base, workers="auto", spec_workers=1, cpu_count=cores),
                      plan_workers(**base, workers=None, spec_workers="auto", cpu_count=cores)):
            assert len(plans) == expected == cpu_auto_workers(cores)
            assert {p.threads for p in plans} == {max(1, cores // expected)}
    ddp = plan_workers(**{**base, "devices_per_trial": 2}, workers="auto", spec_workers=1, cpu_count=8)
    assert [(p.devices, p.threads) for p in ddp] == [(2, 1)] * 4  # 4 workers × 2 ranks, one core each
    # --workers wins over the spec's auto, and auto on a GPU machine is one worker per GPU
    assert len(plan_workers(**base, workers=1, spec_workers="auto", cpu_count=8)) == 1
    gpus = plan_workers(**{**base, "cuda_count": 3}, workers="auto", spec_workers=1, cpu_count=12)
    assert [(p.accelerator, p.env["CUDA_VISIBLE_DEVICES"]) for p in gpus] == [("gpu", "0"), ("gpu", "1"), ("gpu", "2")]
    with pytest.raises(DevicePlanError, match="'auto'"):
        plan_workers(**base, workers="many", spec_workers=1, cpu_count=2)


def test_cpu_workers_split_the_cores() -> None:
    base = {"accelerator": "cpu", "devices": "auto", "spec_workers": 1, "cuda_count": 0}
    plans = plan_workers(**base, workers=2, devices_per_trial=1, cpu_count=16)
    assert [(p.index, p.accelerator, p.devices, p.threads) for p in plans] == [(0, "cpu", 1, 8), (1, "cpu", 1, 8)]
    assert all("CUDA_VISIBLE_DEVICES" not in p.env for p in plans)
    ddp = plan_workers(**base, workers=2, devices_per_trial=2, cpu_count=16)
    assert [(p.devices, p.threads) for p in ddp] == [(2, 4), (2, 4)]  # 2 workers × 2 ranks share 16 cores
    crowded = plan_workers(**base, workers=4, devices_per_trial=1, cpu_count=2)
    assert [p.threads for p in crowded] == [1, 1, 1, 1]
    # auto without GPUs is the CPU path; the spec's worker count applies when --workers is not given
    spec_count = plan_workers(**{**base, "accelerator": "auto", "spec_workers": 3}, workers=None,
                              devices_per_trial=1, cpu_count=6)
    assert [(p.accelerator, p.threads) for p in spec_count] == [("cpu", 2)] * 3


def test_one_worker_per_gpu_pinned_by_cuda_visible_devices() -> None:
    base = {"accelerator": "auto", "spec_workers": 1, "cuda_count": 4, "cpu_count": 16}
    auto = plan_workers(**base, devices="auto", workers=None, devices_per_trial=1)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in auto] == ["0", "1", "2", "3"]
    assert {(p.accelerator, p.devices, p.threads) for p in auto} == {("gpu", 1, 4)}
    listed = plan_workers(**base, devices=[2, 3], workers=None, devices_per_trial=1)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in listed] == ["2", "3"]
    pairs_per_trial = plan_workers(**base, devices="auto", workers=None, devices_per_trial=2)
    assert [(p.env["CUDA_VISIBLE_DEVICES"], p.devices) for p in pairs_per_trial] == [("0,1", 2), ("2,3", 2)]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"accelerator": "gpu", "cuda_count": 0}, "gpu"),
        ({"devices": [5], "cuda_count": 4}, "5"),
        ({"devices": "auto", "cuda_count": 4, "workers": 3, "devices_per_trial": 2}, "3"),
    ],
)
def test_device_plans_that_do_not_fit_say_why(overrides: dict, named: str) -> None:
    kwargs = {"accelerator": "auto", "devices": "auto", "workers": None, "spec_workers": 1,
              "devices_per_trial": 1, "cuda_count": 0, "cpu_count": 8, **overrides}
    with pytest.raises(DevicePlanError) as error:
        plan_workers(**kwargs)
    assert isinstance(error.value, ValueError)
    assert named in str(error.value)
