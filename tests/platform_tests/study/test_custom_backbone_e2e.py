"""A researcher's own backbone (a ``module:function`` builder outside the repo) studied end to end through the
real CLI: trials with params and FLOPs, MLflow child runs, promotion with verification, and the champion loaded
in a program that cannot import the researcher's module (the model ships its code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from platform.records import METRIC_FLOPS, ROLE_TRIAL, TAG_ROLE
from tests.platform_tests.studyrun import REPO, env, run_study, stores, tiny_spec, write_spec
from tests.support.limits import HANG_S

MODULE = "tiny_backbone"
BUILDER = f"{MODULE}:tiny_sasa"
SOURCE = '''"""A tiny local-attention network: a conv, one SASA layer, global pooling, a linear head."""

from torch import nn

import sasa


class TinySASA(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, kernel_size: int, heads: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.attention = sasa.SASA2d(8, 8, kernel_size=kernel_size, heads=heads)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.attention(self.stem(x).relu()).relu().mean(dim=(2, 3)))


def tiny_sasa(num_classes: int, in_channels: int = 3, kernel_size: int = 3, heads: int = 2) -> nn.Module:
    return TinySASA(num_classes, in_channels, kernel_size, heads)
'''


def _user_env(code_dir: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(code_dir), os.environ.get("PYTHONPATH", "")) if p)}


@pytest.fixture(scope="module")
def custom_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp_path = tmp_path_factory.mktemp("custom")
    code_dir = tmp_path / "user_code"
    code_dir.mkdir()
    (code_dir / f"{MODULE}.py").write_text(SOURCE)
    spec = tiny_spec("custom", model={"name": BUILDER, "heads": 2}, search={"seeds": [0]})
    spec["model"] = {"name": BUILDER, "heads": 2}  # only what the builder takes (tiny_spec's ResNet options go)
    path = write_spec(tmp_path / "custom.yaml", spec)
    result = run_study(path, tmp_path, env_vars=_user_env(code_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path, code_dir


def test_trials_of_a_custom_backbone_have_params_flops_and_config(custom_study) -> None:
    tmp_path, _ = custom_study
    trials = optuna.load_study(study_name="custom", storage=stores(tmp_path)[0]).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    by_window = {t.user_attrs["model_config"]["kernel_size"]: t.user_attrs for t in trials}
    assert sorted(by_window) == [3, 5]
    for window, attrs in by_window.items():
        assert attrs["model_config"] == {"name": BUILDER, "num_classes": 10, "in_channels": 1, "heads": 2,
                                         "kernel_size": window}
        assert attrs["params"] > 0 and attrs["flops"] > 0 and attrs["model_uri"].startswith("models:/")
    assert by_window[5]["flops"] > by_window[3]["flops"]  # SASA2d's analytic core FLOPs are counted


def test_mlflow_child_runs_of_a_custom_backbone(custom_study) -> None:
    tmp_path, _ = custom_study
    client = MlflowClient(tracking_uri=stores(tmp_path)[1])
    runs = client.search_runs([client.get_experiment_by_name("custom").experiment_id])
    children = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_TRIAL]
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)
    for run in children:
        assert run.data.params["model.name"] == BUILDER and run.data.metrics[METRIC_FLOPS] > 0


def test_a_custom_backbone_is_promoted_and_loads_without_its_module(custom_study, tmp_path: Path) -> None:
    study_dir, code_dir = custom_study
    plain = {k: v for k, v in env().items() if k != "PYTHONPATH"}  # the user's module is not importable
    result = subprocess.run(  # by study name: the stored spec is read back without importing the builder
        [sys.executable, "-m", "platform.promote", "custom", "--runs-dir", str(study_dir / "runs")],
        cwd=REPO, env=plain, capture_output=True, text=True, timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verification passed" in result.stdout
    code = (
        "import sys, mlflow, mlflow.pytorch, torch\n"
        f"mlflow.set_tracking_uri({stores(study_dir)[1]!r})\n"
        f"mlflow.set_registry_uri({stores(study_dir)[1]!r})\n"
        "model = mlflow.pytorch.load_model('models:/sasa-custom@champion', map_location='cpu')\n"
        "with torch.no_grad():\n"
        "    logits = model(torch.rand(3, 1, 8, 8))\n"
        f"print(type(model.backbone).__name__, tuple(logits.shape), sys.modules[{MODULE!r}].__file__, sep='|')\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=plain, capture_output=True, text=True,
                            timeout=HANG_S)
    assert loaded.returncode == 0, loaded.stderr
    name, shape, source = loaded.stdout.strip().splitlines()[-1].split("|")
    assert (name, shape) == ("TinySASA", "(3, 10)") and str(code_dir) not in source  # from the model's own code
