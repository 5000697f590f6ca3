"""The GPU training path on CPU: steps that never read the device, ``train.compile``, ``train.channels_last``,
the runtime switches (TF32 matmuls, cuDNN autotuning) and ``model.backend`` reaching the network.

Host reads are detected at run time with a ``TorchFunctionMode`` (every ``Tensor.item``/``__bool__``/``tolist``/
``cpu``/``__float__``/``__int__``/``numpy`` call goes through it, torchmetrics' included), and statically in the
step methods' source. On CUDA each of those is a device sync.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, TensorDataset

import sasa
from platform.records import METRIC_VAL_ACC
from platform.search import build_model, make_point
from platform.spec import SpecError, TrainSpec, parse_spec
from platform.spec.sections import ModelSpec
from platform.training import SasaClassifier, runtime_settings, train_trial
from platform.training import classifier as classifier_module
from tests.platform_tests.studyrun import tiny_spec

HOST_READS = {"item", "__bool__", "tolist", "cpu", "__float__", "__int__", "__index__", "numpy"}
STEP_METHODS = ("training_step", "validation_step", "test_step", "_step", "_run_net", "forward")


class HostReads(TorchFunctionMode):
    """Records every tensor method that copies a value to the host."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def _tiny_net(in_channels: int = 1) -> torch.nn.Module:
    return sasa.create_model("resnet26", 3, in_channels=in_channels, width=0.1, small_input=True, backbone="attention",
                             heads=2, kernel_size=3)


def _train(**changes: Any) -> TrainSpec:
    return TrainSpec(**{"epochs": 1, "batch_size": 4, "warmup_epochs": 0, "lr": 0.05, **changes})


def _batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 1, 8, 8), torch.randint(0, 3, (n,))


def test_the_spy_sees_host_reads() -> None:
    x = torch.randn(3)
    with HostReads() as spy:
        x[0].item()
        if torch.isfinite(x).all():
            pass
    assert spy.seen == ["item", "__bool__"]


def test_training_and_validation_steps_never_read_the_device() -> None:
    module = SasaClassifier.for_backbone(_tiny_net(), _train())
    batch = _batch()
    with HostReads() as spy:
        loss = module.training_step(batch, 0)
        loss.backward()
        with torch.no_grad():
            module.validation_step(batch, 0)
            module.test_step(batch, 0)
    assert spy.seen == []
    # The metrics still counted what the steps gave them (the checks were skipped, not the work).
    assert module.train_loss.compute().isfinite() and module.val_metrics.compute()["acc"].numel() == 1


def test_step_methods_have_no_host_reads_in_their_source() -> None:
    for name in STEP_METHODS:
        tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(classifier_module.SasaClassifier, name))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in {"item", "cpu", "tolist", "numpy"}, f"{name} calls .{node.func.attr}()"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"float", "int", "bool"}, f"{name} calls {node.func.id}()"


def test_a_non_finite_training_loss_still_fails_the_trial(tmp_path: Path) -> None:
    module = SasaClassifier.for_backbone(_tiny_net(), _train())
    images, labels = _batch(8)
    images[5] = float("nan")
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        trainer.fit(module, loader)


class _Digits(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.data = TensorDataset(torch.randn(8, 3, 8, 8, generator=generator), torch.arange(8) % 3)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=4)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=4)


class _SeenLayouts(pl.Callback):
    """Records, for every training batch, whether the network's input is in channels_last memory format."""

    def __init__(self) -> None:
        self.channels_last: list[bool] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        def record(net: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            if net.training:
                self.channels_last.append(args[0].is_contiguous(memory_format=torch.channels_last))

        pl_module.net.register_forward_pre_hook(record)


def _fit(tmp_path: Path, train: TrainSpec, callbacks: list[pl.Callback]) -> tuple[Any, SasaClassifier]:
    return train_trial(_tiny_net(in_channels=3), _Digits(), train=train, monitor=METRIC_VAL_ACC, mode="max", seed=0,
                       work_dir=tmp_path, callbacks=callbacks, accelerator="cpu", progress_bar=False)


def test_channels_last_converts_the_network_and_every_batch(tmp_path: Path) -> None:
    seen = _SeenLayouts()
    outcome, module = _fit(tmp_path, _train(channels_last=True), [seen])
    assert seen.channels_last == [True, True]
    convs = [m.weight for m in module.net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert outcome.best_value is not None and outcome.test_metrics


def test_channels_last_is_off_by_default(tmp_path: Path) -> None:
    seen = _SeenLayouts()
    _fit(tmp_path, _train(), [seen])
    assert seen.channels_last == [False, False]


def _mini_sasa_net() -> torch.nn.Module:
    """One conv, one SASA2d (its torch.library op inside the compiled graph), a linear head: inductor on CPU
    compiles C++ per kernel, and a whole resnet26 takes over 10 minutes to compile on a shared 2-core machine."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 1), torch.nn.ReLU(), sasa.SASA2d(8, 8, kernel_size=3, heads=2),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3),
    )


def test_compile_trains_one_epoch_through_torch_compile(tmp_path: Path) -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    net = _mini_sasa_net()
    module = SasaClassifier({"num_classes": 3}, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.0,
                            warmup_epochs=0.0, label_smoothing=0.0, compile=True, net=net)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)
    before = [p.detach().clone() for p in net.parameters()]
    trainer.fit(module, datamodule=_Digits())
    assert isinstance(module._compiled, torch._dynamo.eval_frame.OptimizedModule)
    assert module._compiled._orig_mod is net
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # dynamo really captured the network
    assert trainer.current_epoch == 1 and module.train_loss.update_count == 0  # reset after the logged epoch
    assert all(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))  # it trained
    # The state dict keeps the plain network's keys: checkpoints load into an uncompiled module.
    assert not any("_orig_mod" in key or "_compiled" in key for key in module.state_dict())


def test_compile_is_off_by_default(tmp_path: Path) -> None:
    _, module = _fit(tmp_path, _train(), [])
    assert module._compiled is None


def test_runtime_settings_switch_on_for_gpus_only() -> None:
    cpu = runtime_settings(_train(), "cpu")
    assert cpu == {"float32_matmul_precision": torch.get_float32_matmul_precision(), "cudnn_benchmark": False}
    assert runtime_settings(_train(), "gpu") == {"float32_matmul_precision": "high", "cudnn_benchmark": True}
    assert runtime_settings(_train(deterministic=True), "gpu")["cudnn_benchmark"] is False


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_model_backend_reaches_every_sasa_layer_through_the_one_builder(backend: str) -> None:
    spec = parse_spec(tiny_spec("backend"), [f"model.backend={backend}"])
    net = build_model(spec, make_point({"window_size": 3}), num_classes=3, in_channels=1)
    assert net.config["backend"] == backend  # objective.py logs net.config as the model.* MLflow params
    layers = [m for m in net.modules() if isinstance(m, sasa.SASA2d)]
    assert layers and all(layer.backend == backend for layer in layers)


def test_model_backend_defaults_to_the_factory_default() -> None:
    assert ModelSpec().backend is None and "backend" not in ModelSpec().options()
    net = ModelSpec(width=0.1, small_input=True, backbone="attention", heads=2).build(num_classes=3, in_channels=1)
    assert net.config["backend"] == sasa.models.factory.DEFAULTS["backend"]


def test_a_bad_backend_names_the_valid_ones() -> None:
    with pytest.raises(SpecError, match=r"model\.backend.*auto.*torch.*triton"):
        parse_spec(tiny_spec("backend"), ["model.backend=cuda"])
