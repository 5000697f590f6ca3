"""The numerics record (``platform.training.numerics``): a trial rerun with the same record gives the same value,
and what changes the numbers (the thread count) shows in the record. Real Lightning training of the quick start's
attention ResNet-26 on the digits, shortened to a few batches."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch

from platform.data.datamodule import build_datamodule
from platform.search import build_model, grid_points, resolve
from platform.spec.study_spec import load_spec
from platform.training.numerics import numerics_record
from platform.training.trainer import train_trial

REPO = Path(__file__).resolve().parents[3]
SHORT = ["train.epochs=1", "train.warmup_epochs=0", "train.limit_train_batches=3", "train.limit_val_batches=2",
         "model.width=0.125", "data.image_size=8"]


@pytest.fixture
def threads():
    """Restores torch's intra-op thread count after a test that sets it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _trial(tmp_path: Path, name: str) -> tuple[float, dict, dict[str, torch.Tensor]]:
    """One shortened quick-start trial (window size 7, seed 3): its value, numerics record and final weights."""
    spec = load_spec(REPO / "studies" / "window_size.yaml", SHORT)
    point = next(p for p in grid_points(spec) if p.params["window_size"] == 7)
    _, train = resolve(spec, point)
    data = build_datamodule(spec.data, batch_size=train.batch_size, seed=3, cache_dir=tmp_path / "data")
    data.setup("fit")
    info = data.dataset_info()
    lightning.pytorch.seed_everything(3, workers=True, verbose=False)
    net = build_model(spec, point, num_classes=info["num_classes"], in_channels=info["channels"])
    record = numerics_record(train, accelerator="cpu", backend=net.config["backend"])
    outcome, module = train_trial(net, data, train=train, monitor="val/acc", mode="max", seed=3,
                                  work_dir=tmp_path / name, callbacks=[], accelerator="cpu", progress_bar=False)
    assert outcome.best_value is not None
    return outcome.best_value, record, {k: v.clone() for k, v in module.net.state_dict().items()}


def test_the_same_record_gives_the_same_value(tmp_path: Path, threads) -> None:
    threads(1)
    first_value, first_record, first_weights = _trial(tmp_path, "first")
    second_value, second_record, second_weights = _trial(tmp_path, "second")
    assert first_record == second_record
    assert first_value == second_value
    assert first_weights.keys() == second_weights.keys()
    assert all(torch.equal(first_weights[k], second_weights[k]) for k in first_weights)


def test_the_record_names_what_the_numbers_depend_on(threads) -> None:
    spec = load_spec(REPO / "studies" / "window_size.yaml", SHORT)
    threads(1)
    one = numerics_record(spec.train, accelerator="cpu")
    threads(2)
    two = numerics_record(spec.train, accelerator="cpu")
    assert (one["threads"], two["threads"]) == (1, 2)  # another thread count is visible in the record
    assert {k: v for k, v in one.items() if k != "threads"} == {k: v for k, v in two.items() if k != "threads"}
    assert one["sasa_backend"] == "torch"  # "auto" on a CPU resolves to the torch kernel
    assert one["torch"] == torch.__version__ and one["lightning"] == lightning.__version__
    assert one["precision"] == str(spec.train.precision) and one["deterministic"] is spec.train.deterministic
    assert one["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
