"""Issue 18, cause 9: the public API checks its arguments' types and names the wrong one, before any work.

In-process calls of the real functions (``platform.api`` is ``sasa_lab`` installed); each must fail with a
``TypeError``/``ValueError`` naming the argument, in a folder where nothing may appear.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import sasa
from platform.api import build_report, load_results, run_study
from platform.promote.promotion import promote
from platform.training.classifier import SasaClassifier

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "studies" / "window_size.yaml"


@pytest.fixture
def empty_cwd(tmp_path: Path) -> Path:
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)
    assert not any(tmp_path.iterdir()), f"files created: {list(tmp_path.iterdir())}"


@pytest.mark.parametrize(("call", "names"), [
    (lambda: run_study(SPEC, recipes="recipes/cpu-digits.yaml"), ("recipes", "list")),
    (lambda: run_study(SPEC, ["train.epochs=1"]), ("overrides[0]",)),
    (lambda: run_study(SPEC, 3), ("overrides[0]",)),
    (lambda: run_study(42), ("spec_path",)),
    (lambda: run_study(SPEC, runs_dir=5), ("runs_dir",)),
    (lambda: run_study(SPEC, storage=Path("x.db")), ("storage",)),
    (lambda: run_study(SPEC, fresh="yes"), ("fresh",)),
    (lambda: run_study(SPEC, workers="2"), ("workers",)),
    (lambda: promote("bad", trial="0"), ("trial",)),
    (lambda: promote("bad", tolerance="0.1"), ("tolerance",)),
    (lambda: promote("bad", alias=None), ("alias",)),
    (lambda: promote(["bad"]), ("study_name",)),
    (lambda: load_results(Path("bad")), ("study_name",)),
    (lambda: build_report("bad", log="no"), ("log",)),
])
def test_wrong_argument_types_are_named(call, names: tuple[str, ...], empty_cwd: Path) -> None:
    with pytest.raises(TypeError) as caught:
        call()
    for name in names:
        assert name in str(caught.value), str(caught.value)


@pytest.mark.parametrize("tolerance", [float("inf"), float("nan"), -1.0])
def test_promote_tolerance_must_be_finite(tolerance: float, empty_cwd: Path) -> None:
    with pytest.raises(ValueError, match="--tolerance"):
        promote("bad", tolerance=tolerance)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_load_from_checkpoint_refuses_a_file_that_is_not_one(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        SasaClassifier.load_from_checkpoint(path)
    text = str(caught.value)
    assert "model.ckpt" in text and "not a SasaClassifier checkpoint" in text and "weights_only" not in text


def test_load_from_checkpoint_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        SasaClassifier.load_from_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("layer", [sasa.SASA2d(4, 4, kernel_size=3, heads=2, backend="torch"),
                                   sasa.AttentionStem(4, 4, heads=2)])
@pytest.mark.parametrize("shape", [(4, 8, 8), (1, 1, 4, 8, 8), (1, 3, 8, 8)])
def test_attention_layers_name_the_expected_shape(layer: torch.nn.Module, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as caught:
        layer(torch.zeros(shape))
    text = str(caught.value)
    assert "(B, C, H, W)" in text and type(layer).__name__ in text and "C=4" in text
