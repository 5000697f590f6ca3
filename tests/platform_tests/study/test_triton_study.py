"""The Triton backend through the whole platform, on the CPU under Triton's interpreter (``TRITON_INTERPRET=1``):
a real study (CLI subprocess) whose model runs ``model.backend: triton`` with ``bf16-mixed`` autocast inside
Lightning, a Lightning checkpoint saved and resumed with the Triton ops in the network, and the champion promoted
and verified on the CPU with the torch backend and no interpreter (what a GPU study's promotion does).

The interpreter runs every Triton program in numpy, about 6 s per SASA layer forward + backward even on tiny
maps, so the network has one attention layer (``attention_groups: [4]``), the data 140 digits of 8×8 written as a
local image folder (``benchmarks.digits_folder``), and training two steps.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pytorch
import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

import sasa
from benchmarks.digits_folder import write_digits_folder
from platform.data.datamodule import build_datamodule
from platform.promote.__main__ import main as promote_main
from platform.records import (
    ATTR_EPOCHS_RUN,
    ATTR_RUN,
    ATTR_TEST,
    METRIC_TEST_ACC,
    METRIC_VAL_ACC,
    VERIFY_PASSED,
    VERSION_VERIFY,
)
from platform.spec import TrainSpec
from platform.spec.sections import DataSpec
from platform.training import train_trial
from tests.platform_tests.studyrun import run_study, stores, write_spec

STUDY = "tritonpath"
MODEL = {"name": "resnet26", "stem": "conv", "attention_groups": [4], "small_input": True, "width": 0.25,
         "heads": 2, "backend": "triton"}
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 0.05, "warmup_epochs": 0, "limit_train_batches": 2,
         "limit_val_batches": 1, "precision": "bf16-mixed"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits") / "images"
    write_digits_folder(root, size=8, count=140)  # 21 test images: 3 batches; a stratified split needs ≥ 10
    return root


def _data(digits: Path) -> dict:
    return {"source": "local", "path": str(digits), "image_size": 8, "grayscale": True}


@pytest.fixture(scope="module")
def triton_study(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("triton_study")
    spec = write_spec(tmp_path / "spec.yaml", {
        "name": STUDY, "description": "the triton backend through the platform", "data": _data(digits),
        "model": MODEL, "train": TRAIN, "search": {"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0]},
        "objective": {"metric": "val/acc", "direction": "maximize"},
    })
    result = run_study(spec, tmp_path, env_vars={"TRITON_INTERPRET": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path


def test_a_triton_study_completes_and_records_backend_and_precision(triton_study: Path) -> None:
    storage, tracking = stores(triton_study)
    (trial,) = optuna.load_study(study_name=STUDY, storage=storage).get_trials()
    assert trial.state == TrialState.COMPLETE
    assert METRIC_TEST_ACC in trial.user_attrs[ATTR_TEST] and trial.user_attrs[ATTR_EPOCHS_RUN] == 1
    run = MlflowClient(tracking_uri=tracking).get_run(trial.user_attrs[ATTR_RUN])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.backend"] == "triton" and run.data.params["train.precision"] == "bf16-mixed"


def test_the_champion_is_verified_on_the_cpu_with_the_torch_backend(
    triton_study: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """No interpreter here: a model that still asked for Triton could not run on the CPU at all."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delenv("SASA_BACKEND", raising=False)
    assert promote_main([STUDY, "--runs-dir", str(triton_study / "runs")]) == 0
    assert "verification passed" in capsys.readouterr().out
    _, tracking = stores(triton_study)
    client = MlflowClient(tracking_uri=tracking)
    version = client.get_model_version_by_alias(f"sasa-{STUDY}", "champion")
    assert version.tags[VERSION_VERIFY] == VERIFY_PASSED
    mlflow.set_tracking_uri(tracking)
    model = mlflow.pytorch.load_model(f"models:/sasa-{STUDY}@champion", map_location="cpu")
    layers = [m for m in model.modules() if isinstance(m, sasa.SASA2d)]
    assert layers and {layer.backend for layer in layers} == {"auto"}  # logged portable: Triton on CUDA only
    assert model.backbone.config["backend"] == "triton"  # what it trained with


def test_a_triton_checkpoint_is_saved_and_resumed_under_bf16(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One epoch saves ``last.ckpt``; asked for two, the same work folder resumes from it (Lightning restores the
    weights, optimiser and epoch) and trains only the second."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    datamodule = build_datamodule(DataSpec(**_data(digits)), batch_size=8, seed=0, cache_dir=tmp_path / "cache",
                                  num_workers=0)
    work = tmp_path / "work"

    def fit(epochs: int):
        net = sasa.create_model("resnet26", 10, in_channels=1, kernel_size=3, **{
            k: v for k, v in MODEL.items() if k != "name"})
        train = TrainSpec(**{**TRAIN, "epochs": epochs, "limit_train_batches": 1})
        return train_trial(net, datamodule, train=train, monitor=METRIC_VAL_ACC, mode="max", seed=0, work_dir=work,
                           callbacks=[], accelerator="cpu", progress_bar=False)

    first, _ = fit(1)
    assert first.resumed_from is None and first.epochs_run == 1 and (work / "last.ckpt").exists()
    second, module = fit(2)
    assert second.resumed_from == str(work / "last.ckpt") and second.epochs_run == 2
    assert second.test_metrics and module.trainer.precision == "bf16-mixed"
    assert all(layer.backend == "triton" for layer in module.net.modules() if isinstance(layer, sasa.SASA2d))
