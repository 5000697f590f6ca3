"""Evaluation under DDP counts every example exactly once (issue 26), whatever the world size.

Lightning's ``DistributedSampler`` pads a split to a multiple of the world size by repeating examples: 270
validation images over 4 gloo processes were scored as k/272. Here real gloo process groups on CPU evaluate a
split of 270 examples (not a multiple of 4, nor of 8) with the datamodule's sampler (:mod:`platform.data.shards`)
and the classifier's metrics (torchmetrics' accuracy, :class:`ExampleMean`), reduced across ranks, and the result
is compared with the exact single-process count; the padded sampler is run too, to show what the test catches.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from platform.data import shards
from platform.records import ATTR_EXAMPLES, ATTR_TEST, ATTR_WORLD_SIZE, METRIC_TEST_ACC
from platform.study.trial_facts import evaluated_examples
from platform.training.classifier import ExampleMean
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec
from tests.scale_tests.accounting import load_trials

N, CLASSES = 270, 10


def _split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels, a fixed prediction per example (right on the first examples, which padding repeats), losses."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, CLASSES, (N,), generator=generator)
    predicted = torch.where(torch.rand(N, generator=generator) < 0.3, labels, (labels + 1) % CLASSES)
    predicted[:8] = labels[:8]
    losses = torch.rand(N, generator=generator)
    return labels, predicted, losses


def _evaluate(rank: int, world: int, port: int, padded: bool, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        labels, predicted, losses = _split()
        dataset = TensorDataset(torch.arange(N))
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False) if padded \
            else shards.evaluation_sampler(dataset)
        accuracy = MulticlassAccuracy(num_classes=CLASSES, average="micro", validate_args=False)
        loss = ExampleMean()
        seen = []
        for (index,) in DataLoader(dataset, batch_size=32, sampler=sampler):
            accuracy.update(torch.nn.functional.one_hot(predicted[index], CLASSES).float(), labels[index])
            loss.update(losses[index].mean(), index.numel())
            seen += index.tolist()
        result = {"acc": float(accuracy.compute()), "loss": float(loss.compute()), "seen": seen}
        Path(out, f"{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(world: int, padded: bool, tmp_path: Path) -> list[dict]:
    # fork: the children need no fresh interpreter (spawn re-imports torch per rank: minutes on 2 cores)
    mp.start_processes(_evaluate, args=(world, _free_port(), padded, str(tmp_path)), nprocs=world, join=True,
                       start_method="fork")
    return [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in range(world)]


@pytest.mark.parametrize("world", [4, 8])
def test_each_example_counted_once_across_ranks(world: int, tmp_path: Path) -> None:
    labels, predicted, losses = _split()
    exact_acc = float(torch.tensor(int((predicted == labels).sum()) / N, dtype=torch.float32))
    results = _run(world, False, tmp_path)
    seen = sorted(i for r in results for i in r["seen"])
    assert seen == list(range(N))  # every example on exactly one rank
    for r in results:  # every rank computes the same, reduced value
        assert r["acc"] == pytest.approx(exact_acc, abs=1e-7)
        assert r["loss"] == pytest.approx(float(losses.mean()), rel=1e-5)
    assert round(results[0]["acc"] * N, 3) == int((predicted == labels).sum())


def test_the_padded_sampler_counts_examples_twice(tmp_path: Path) -> None:
    labels, predicted, _ = _split()
    results = _run(4, True, tmp_path)
    assert len([i for r in results for i in r["seen"]]) == 272  # two examples repeated
    assert results[0]["acc"] != pytest.approx(int((predicted == labels).sum()) / N, abs=1e-7)


def test_no_process_group_leaves_the_loader_alone() -> None:
    assert shards.evaluation_sampler(TensorDataset(torch.arange(5))) is None
    sampler = shards.EvenShards(TensorDataset(torch.arange(10)), num_replicas=4, rank=3)
    assert list(sampler) == [3, 7] and len(sampler) == 2


def test_a_four_process_trial_records_whole_examples_of_the_split(tmp_path: Path) -> None:
    """Through the CLI: 4 gloo ranks over the 270 validation and test digits (not a multiple of 4): the trial's
    val/acc and test/acc are k/270 of the 270 examples it records (before: 36/272 and 33/272)."""
    spec = tiny_spec("ddp_shards", train={"epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1.0},
                     search={"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0]},
                     execution={"accelerator": "cpu", "devices_per_trial": 4})
    result = run_study(write_spec(tmp_path / "ddp_shards.yaml", spec), tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    (trial,) = load_trials(stores(tmp_path)[0], "ddp_shards")
    assert trial.user_attrs[ATTR_WORLD_SIZE] == 4
    examples = trial.user_attrs[ATTR_EXAMPLES]
    assert examples["val"] == examples["test"] == N
    for value in (trial.value, trial.user_attrs[ATTR_TEST][METRIC_TEST_ACC]):
        count = value * N
        assert abs(count - round(count)) < 1e-3 and 0 < round(count) < N, value  # k/270, never k/272


def test_recorded_examples_under_ddp_with_limited_validation_batches() -> None:
    """``train.limit_val_batches`` limits each rank's batches: N is the sum over the ranks' shards (no padding)."""
    info = {"num_train": 1257, "num_val": N, "num_test": N}
    assert evaluated_examples(info, 32, None, 4) == {"train": 1257, "val": N, "test": N}
    assert evaluated_examples(info, 32, 2, 1)["val"] == 64
    assert evaluated_examples(info, 32, 2, 4)["val"] == 4 * 64  # shards of 68, 68, 67, 67: two batches each
    assert evaluated_examples(info, 32, 3, 4)["val"] == N  # three batches hold every shard
    assert evaluated_examples(info, 32, 1.0, 8)["val"] == N


def test_a_split_smaller_than_the_world_size_is_refused_before_training() -> None:
    """A rank with no example skips evaluation while the others wait in the collective: refused, naming both."""
    problems = shards.shard_problems({"val": 3, "test": N}, world_size=4, batch_size=32, limit_val=None)
    assert len(problems) == 1 and "execution.devices_per_trial" in problems[0] and "val split has 3" in problems[0]
    assert shards.shard_problems({"val": 4, "test": 4}, world_size=4, batch_size=32, limit_val=None) == []
    assert shards.shard_problems({"val": 1}, world_size=1, batch_size=32, limit_val=None) == []
    with pytest.raises(ValueError, match=r"execution\.devices_per_trial: 4 ranks but the test split has 2"):
        evaluated_examples({"num_train": 100, "num_val": N, "num_test": 2}, 32, None, 4)


def test_a_fraction_of_validation_batches_that_leaves_a_rank_none_is_refused() -> None:
    """129 examples over 4 ranks at batch 32: shards of 33, 32, 32, 32 are 2, 1, 1, 1 batches, and 0.5 of them is
    int(1 × 0.5) = 0 batches on three ranks (Lightning raised on those ranks only)."""
    info = {"num_train": 1000, "num_val": 129, "num_test": 129}
    with pytest.raises(ValueError, match=r"train\.limit_val_batches: 0\.5 .* 0 batches on some rank"):
        evaluated_examples(info, 32, 0.5, 4)
    assert evaluated_examples(info, 32, 0.5, 1)["val"] == 64  # one process: 5 batches, int(2.5) = 2 of them
    assert evaluated_examples(info, 32, 1.0, 4)["val"] == 129
    assert evaluated_examples(info, 32, 1, 4)["val"] == 4 * 32 == 128  # an integer limit: a batch on every rank
