"""Timing and memory helpers shared by the benchmarks (CPU wall clock, CUDA events, peak allocator bytes).

Nothing here imports ``platform`` (the repo's package of that name shadows the standard module).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import profile

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_list(value: str, valid: tuple[str, ...], option: str) -> list[str]:
    """Comma-separated choices, validated: ``"a,b"`` → ``["a", "b"]``; a ValueError names the option otherwise."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    bad = [item for item in items if item not in valid]
    if not items or bad:
        raise ValueError(f"{option}: invalid value {value!r}; valid: comma-separated subset of {', '.join(valid)}")
    return items


def check_device(device: str) -> torch.device:
    """``"cpu"`` or ``"cuda"`` (CUDA must be available), else ValueError."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device: invalid value {device!r}; valid values: cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
    return torch.device(device)


def interleaved_ms(fns: dict[str, Callable[[], None]], reps: int) -> tuple[dict[str, tuple[float, float]], float]:
    """CPU: (median, min) wall-clock milliseconds per function, and this process's CPU share over the timed runs.

    The functions take turns so that load drifts hit all alike. The CPU share is the process's CPU time divided
    by (wall time × threads): near 1 when the threads had the cores to themselves, lower when other processes
    took turns on them.
    """
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    cpu_start, wall_start = os.times(), time.perf_counter()
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - start))
    cpu_end, wall = os.times(), time.perf_counter() - wall_start
    cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    share = cpu / (wall * torch.get_num_threads())
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}, share


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_ms(fn: Callable[[], None], device: torch.device, warmup: int, reps: int, cap_s: float) -> dict[str, float]:
    """Time ``fn``: CUDA events on a GPU, wall clock on the CPU. Returns ``first_s`` (seconds of the first call,
    which includes Triton JIT compilation and cuDNN autotuning), and ``ms`` / ``min_ms`` (median / fastest of up
    to ``reps`` timed calls after ``warmup`` calls in all) and ``reps``; the timed calls stop early once they have
    taken ``cap_s`` seconds (at least one is always timed)."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    first_s = time.perf_counter() - start
    for _ in range(warmup - 1):
        fn()
    sync(device)
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < max(1, reps) and (not times or time.perf_counter() - began < cap_s):
        if device.type == "cuda":
            events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            events[0].record()
            fn()
            events[1].record()
            events[1].synchronize()
            times.append(events[0].elapsed_time(events[1]))
        else:
            tick = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - tick))
    return {"first_s": first_s, "ms": statistics.median(times), "min_ms": min(times), "reps": len(times)}


def device_peak_mib(fn: Callable[[], None], device: torch.device) -> float:
    """Peak memory of one call of ``fn`` above what was allocated before it (inputs and weights that exist
    already are not counted): ``torch.cuda.max_memory_allocated`` on a GPU, :func:`cpu_peak_mib` on the CPU."""
    if device.type != "cuda":
        return cpu_peak_mib(fn)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def cpu_peak_mib(fn: Callable[[], None]) -> float:
    """CPU: peak of live allocator bytes during ``fn`` (profiler allocation/free events, in time order)."""
    with profile(profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak / 2**20


def proc_status_mib(field: str) -> float:
    """This process's ``VmRSS`` (resident now) or ``VmHWM`` (its high-water mark) from /proc, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"/proc/self/status has no {field} line")


def first_call_rss_mib(fn: Callable[[], None]) -> float:
    """CPU: how far one call of ``fn`` raises this process's peak resident memory (``VmHWM``) above its resident
    memory before the call (the peak is reset first: ``/proc/self/clear_refs``). Meant for the first call in a
    fresh process, where it counts everything the call brings in (allocations the allocator keeps afterwards,
    modules imported on first use), which a later call or the allocator's own counters do not see."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = proc_status_mib("VmRSS")
    fn()
    return proc_status_mib("VmHWM") - before


def wait_for_load(max_load: float | None, patience_s: float = 1800.0) -> float:
    """Wait (at most ``patience_s``) until the 1-minute load average drops below ``max_load``; return it."""
    deadline = time.time() + patience_s
    while max_load is not None and os.getloadavg()[0] >= max_load and time.time() < deadline:
        time.sleep(10)
    return os.getloadavg()[0]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine(device: torch.device) -> str:
    """One line naming the hardware and library versions a measurement ran on."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        try:
            import triton

            triton_version = triton.__version__
        except ImportError:
            triton_version = "not installed"
        return (
            f"{props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}, triton {triton_version}, cuDNN {torch.backends.cudnn.version()}"
        )
    return f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}"


def gpu_name() -> str:
    """``nvidia-smi``'s name of the first GPU, or a note why there is none."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        return result.stdout.strip() or f"nvidia-smi failed: {result.stderr.strip()}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi unavailable ({exc})"


class Budget:
    """Soft time budget: ``left()`` seconds remain of ``seconds`` since creation (None: unlimited)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - self.elapsed()

    def spent(self) -> bool:
        return self.left() <= 0


def stamp() -> str:
    """UTC time of day for progress lines."""
    return time.strftime("%H:%M:%S", time.gmtime())
