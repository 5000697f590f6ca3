"""What crosses a process boundary is typed: the worker plan and the DDP trial survive ``to_env``/``from_env``,
and a worker's command line parses back to the same study request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platform.spec import parse_spec
from platform.study.__main__ import build_parser
from platform.study.ddp import TRIAL_ENV, DdpTrial
from platform.study.devices import PLAN_ENV, WorkerPlan, plan_workers
from platform.study.run import StudyRequest
from platform.study.worker import build_parser as worker_parser
from tests.platform_tests.studyrun import tiny_spec


def test_worker_plan_round_trips_through_the_environment() -> None:
    (plan,) = plan_workers(accelerator="gpu", devices=[1], workers=None, spec_workers=1, devices_per_trial=1,
                           cuda_count=2, cpu_count=8)
    env = plan.to_env()
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and json.loads(env[PLAN_ENV])["threads"] == 8
    assert WorkerPlan.from_env(env) == plan
    with pytest.raises(ValueError, match=PLAN_ENV):
        WorkerPlan.from_env({})


def test_ddp_trial_round_trips_and_carries_the_spec() -> None:
    spec = parse_spec(tiny_spec("ddp"))
    trial = DdpTrial(spec=spec.resolved_dict(), optuna_params={"window_size": 5}, seed=1, work_dir="/w",
                     data_cache="/c", data_info={"num_classes": 10, "channels": 1, "image_size": 8}, pruning=True,
                     threads=2, accelerator="cpu", devices=2)
    back = DdpTrial.from_env(trial.to_env())
    assert back == trial
    assert parse_spec(back.spec) == spec  # a follower rank rebuilds the same spec without the command line
    with pytest.raises(ValueError, match=TRIAL_ENV):
        DdpTrial.from_env({})


def test_worker_command_line_parses_back_to_the_request(tmp_path: Path) -> None:
    request = StudyRequest(spec_path=Path("s.yaml"), overrides=("train.epochs=2", "search.seeds=[0, 1]"),
                           storage="sqlite:///x.db", tracking_uri=None, runs_dir=tmp_path / "runs", workers=3,
                           fresh=True)
    args = worker_parser().parse_args(request.worker_argv())
    assert args.study == Path("s.yaml").resolve() and tuple(args.overrides) == request.overrides
    assert (args.storage, args.tracking_uri, args.runs_dir) == ("sqlite:///x.db", None, (tmp_path / "runs"))
    assert not hasattr(args, "fresh") and not hasattr(args, "workers")  # only the main process archives, plans
    with pytest.raises(SystemExit):  # the user's command has no hidden worker mode: that is platform.study.worker
        build_parser().parse_args([*request.worker_argv(), "--worker-index", "0"])
