"""The prepared GPU scripts, checked where a CPU can check them: the study check's specs (the GPU recipe plus its
overlay) validate and ask for what the check verifies, the GPU sampler reads ``nvidia-smi`` CSV, and both shell
scripts parse. (``GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh OUT`` runs the whole check on the CPU; too slow
for the suite: the Triton interpreter trains every trial.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from benchmarks import gpu_study
from platform.spec.study_spec import load_spec
from tests.platform_tests.studyrun import REPO


@pytest.mark.parametrize("dry", [False, True])
@pytest.mark.parametrize(("mode", "workers"), gpu_study.PHASES)
def test_the_study_check_specs_validate(dry: bool, mode: str, workers: int, tmp_path: Path) -> None:
    digits = tmp_path / "digits"
    digits.mkdir()
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump(gpu_study.overlay(digits, mode, dry)))
    name = f"gpucheck-{mode}-w{workers}"
    spec = load_spec([REPO / f for f in gpu_study.BASE] + [overlay], [o for o in gpu_study.name_override(name)
                                                                        if o != "--set"])
    assert spec.name == name  # --set name= replaces the composed name (window_size-cifar10)
    assert spec.model.backend == "triton" and spec.train.precision == "bf16-mixed"
    assert spec.train.compile == gpu_study.COMPILE and spec.data.mode == mode and spec.data.source == "local"
    assert spec.execution.accelerator == ("cpu" if dry else "gpu")
    assert list(spec.search.initial_seeds) == [0, 1]
    assert spec.data.image_size == (8 if dry else 32)


def test_the_gpu_sampler_summarises_nvidia_smi_csv(tmp_path: Path) -> None:
    sampler = gpu_study.GpuSampler(tmp_path / "gpu.csv")
    sampler.path.write_text("97, 20480\n3, 20500\n[N/A], 1\n50, 19000\n")
    summary = sampler.summary()
    assert summary == {"gpu_util_mean": 50.0, "gpu_util_median": 50.0, "gpu_mem_max_mib": 20500.0, "gpu_samples": 3}


@pytest.mark.parametrize("script", ["benchmarks/gpu_check.sh", "benchmarks/gpu_study_check.sh"])
def test_the_gpu_scripts_parse(script: str) -> None:
    done = subprocess.run(["bash", "-n", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
