"""What a trial's numbers depend on besides its spec and seed: the numerics record stored with every trial.

A seed fixes the initial weights and the batch order, not the floating-point result. The same trial gives the same
value only when the arithmetic runs the same way, which also depends on:

- ``threads``: torch's intra-op threads. Convolutions, batch norm and matmuls split their reductions by thread, so
  another thread count adds the same numbers in another order; the rounding differences grow over training into
  different accuracies (a few validation examples on the quick start). ``--workers`` changes it: N workers on C
  cores run C // N threads each.
- ``sasa_backend``: the SASA kernel that ran ("torch" or "triton"; the same maths, other rounding).
- ``precision``, ``float32_matmul_precision``, ``deterministic``: the Trainer's precision and the matmul/cuDNN
  switches (:func:`~platform.training.trainer.runtime_settings`).
- ``device`` and ``cpu_capability``: the processor (or GPU) and the vector instruction set oneDNN/ATen dispatch to
  (AVX2 and AVX-512 kernels round differently).
- ``torch``, ``lightning``: library versions (kernels and defaults change between releases).

:func:`numerics_record` returns them as a flat dict (stored as the trial attribute ``records.ATTR_NUMERICS`` and in
the MLflow params under ``runtime``); two trials with the same spec, seed and record give the same value on a CPU.
"""

from __future__ import annotations

from typing import Any

import lightning
import torch

from sasa.kernels import env_backend, resolve_backend

from ..spec.sections import TrainSpec
from .trainer import runtime_settings


def _device_name(accelerator: str) -> str:
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.cuda.current_device())
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def sasa_backend(backend: str, accelerator: str) -> str:
    """The SASA kernel a model built with ``backend`` ("auto", "torch", "triton") runs on ``accelerator``."""
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if gpu and torch.cuda.is_available() else "cpu")
    try:
        return resolve_backend(backend, device)
    except ValueError:  # e.g. "triton" on a CPU without the interpreter: the trial itself will say so
        return backend if backend != "auto" else env_backend()


def numerics_record(train: TrainSpec, *, accelerator: str, backend: str = "auto") -> dict[str, Any]:
    """The settings a trial's numbers depend on (module docstring), read in the process that trains it."""
    settings = runtime_settings(train, accelerator)
    return {
        "threads": torch.get_num_threads(),
        "sasa_backend": sasa_backend(backend, accelerator),
        "precision": str(train.precision),
        "float32_matmul_precision": settings["float32_matmul_precision"],
        "deterministic": bool(train.deterministic),
        "device": _device_name(accelerator),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
    }
