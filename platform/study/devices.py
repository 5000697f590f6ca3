"""Which worker gets which devices: one worker process per device (or per group of ``devices_per_trial``).

A pure function of the spec, the command line and what the machine has, so it is tested with fake device lists.
On a GPU machine each worker sees only its own GPUs (``CUDA_VISIBLE_DEVICES``), so Lightning inside it never
picks DDP over every GPU by itself; on a CPU machine the workers share the cores (``torch.set_num_threads``).

``auto`` (``--workers auto`` or ``execution.workers: auto``) picks the count: one worker per GPU (group of
``devices_per_trial``) on a GPU machine; on a CPU machine one worker per core (per ``devices_per_trial`` cores), at
most :data:`CPU_AUTO_MAX_WORKERS`, each with ``cores // workers`` threads. On the 2-core development machine two
single-threaded workers ran a shortened quick start far faster than one worker with two threads
(benchmarks/results/workers_cpu.md, a loaded machine): an OpenMP team waits at every op for a thread another
process has preempted, and the study's small models leave a second thread little to split. The thread count
changes a trial's numbers (the order of float reductions); each trial records it (``platform.training.numerics``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

PLAN_ENV = "SASA_WORKER_PLAN"
CPU_OVERSUBSCRIPTION = 4  # CPU worker processes per core, at most (more only thrash)
CPU_AUTO_MAX_WORKERS = 8  # ``auto`` on a CPU machine: one worker per core up to this many
AUTO = "auto"


class DevicePlanError(ValueError):
    """The requested workers/devices do not fit the machine (reported as one line, exit code 2)."""


@dataclass(frozen=True)
class WorkerPlan:
    """One worker process: what its Trainer uses. Crosses the process boundary as ``SASA_WORKER_PLAN`` (JSON)."""

    index: int
    accelerator: str  # "gpu" | "cpu" — what each worker's Trainer uses
    devices: int  # Trainer devices per trial (> 1: DDP)
    threads: int  # torch intra-op threads for this worker
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the process (CUDA_VISIBLE_DEVICES)

    def to_env(self) -> dict[str, str]:
        """The worker process's environment additions: ``env`` plus the plan itself."""
        return {**self.env, PLAN_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerPlan:
        """The plan a worker process was started with; raises ``ValueError`` when there is none."""
        text = (os.environ if environ is None else environ).get(PLAN_ENV)
        if not text:
            raise ValueError(f"{PLAN_ENV} is not set: a worker process (python -m platform.study.worker) "
                             "is started by the main process")
        return cls(**json.loads(text))


def cpu_auto_workers(cpu_count: int, devices_per_trial: int = 1) -> int:
    """The worker count ``auto`` gives on a CPU machine: one per ``devices_per_trial`` cores, 1 to
    :data:`CPU_AUTO_MAX_WORKERS`."""
    return max(1, min(CPU_AUTO_MAX_WORKERS, cpu_count // devices_per_trial))


def plan_workers(
    *,
    accelerator: str,
    devices: str | list[int],
    workers: int | str | None,
    spec_workers: int | str,
    devices_per_trial: int,
    cuda_count: int,
    cpu_count: int,
) -> list[WorkerPlan]:
    """Plan the worker processes. ``workers`` is ``--workers`` (None: use the spec / the device count; ``"auto"``:
    module docstring)."""
    per_trial = devices_per_trial
    if workers is not None and workers != AUTO and (not isinstance(workers, int) or workers < 1):
        raise DevicePlanError(f"--workers: {workers} is not valid; give an integer >= 1 or 'auto'")
    requested = workers if workers is not None else spec_workers
    use_gpu = accelerator == "gpu" or (accelerator == "auto" and cuda_count > 0)
    if not use_gpu:
        count = cpu_auto_workers(cpu_count, per_trial) if requested == AUTO else int(requested)
        if count * per_trial > CPU_OVERSUBSCRIPTION * cpu_count:
            option = "--workers" if workers is not None else "execution.workers"
            raise DevicePlanError(f"{option}: {count} workers × {per_trial} processes per trial is more than "
                                  f"{CPU_OVERSUBSCRIPTION} per CPU core; this machine has {cpu_count} cores")
        threads = max(1, cpu_count // (count * per_trial))
        return [WorkerPlan(i, "cpu", per_trial, threads) for i in range(count)]
    if cuda_count == 0:
        raise DevicePlanError("execution.accelerator: 'gpu' but no CUDA device is visible; use cpu or auto")
    gpu_ids = list(range(cuda_count)) if devices == "auto" else list(devices)
    unknown = [d for d in gpu_ids if d >= cuda_count]
    if unknown:
        raise DevicePlanError(
            f"execution.devices: {unknown} not present; this machine has GPUs 0..{cuda_count - 1}"
        )
    fits = len(gpu_ids) // per_trial
    if requested == AUTO:
        count = fits
    else:
        count = workers or (spec_workers if isinstance(spec_workers, int) and spec_workers > 1 else fits)
    if count < 1 or count > fits:
        raise DevicePlanError(
            f"--workers/execution.workers: {count} workers × {per_trial} devices per trial need "
            f"{count * per_trial} GPUs; execution.devices has {len(gpu_ids)} ({gpu_ids})"
        )
    threads = max(1, cpu_count // count)
    plans = []
    for i in range(count):
        mine = gpu_ids[i * per_trial : (i + 1) * per_trial]
        plans.append(WorkerPlan(i, "gpu", per_trial, threads, {"CUDA_VISIBLE_DEVICES": ",".join(map(str, mine))}))
    return plans
