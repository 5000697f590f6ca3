"""GPU sweep of ``python -m benchmarks.sasa --device cuda``: SASA2d per backend vs unfold vs conv3×3 vs conv7×7.

Per configuration (dtype, C, H×W, k) at batch 64, 8 heads, relative positions, stride 1: forward + backward of
the whole layer (SASA2d: its 1×1 projections included) with module and input cast to the dtype, with a fixed
random output gradient (input and parameter gradients computed). Times: CUDA events, median of up to ``--reps``
calls after 2 warm-up calls (the first call, which includes Triton JIT compilation and cuDNN autotuning, is
reported separately in the CSV as ``*_first_s``), the timed calls stopping after ``--cap-s`` seconds.
Memory: ``torch.cuda.max_memory_allocated`` during one forward + backward above what was allocated before it
(input, output gradient and weights excluded).

Jobs run in priority order: the issue's target configuration (bf16, C=128, 32×32, k=7) first, then every
configuration for the first backend and the baselines (bf16 before fp32, k=7 first), then the other backends
(at the target configuration right after its first job). A job is not started once ``--budget-s`` has passed;
the tables say which cells were not run, skipped or failed, and are rewritten after every job.

``--device cpu --gpu-sweep`` runs the same code on the CPU (wall clock, profiler memory) as a dry run of
benchmarks/gpu_check.sh on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import csv
import traceback
from pathlib import Path

import torch
from torch import nn

from benchmarks.sasa import HEADS, UNFOLD_BUDGET_BYTES, UnfoldSASA, make_sasa, num
from benchmarks.timing import DTYPES, Budget, device_ms, device_peak_mib, machine, stamp

GPU_BATCH = 64
TARGET = ("bf16", 128, 32, 7)
UNFOLD_MEMORY_SHARE = 0.4  # skip the unfold baseline where its estimate exceeds this share of the GPU's memory
BASELINES = ("unfold", "conv3", "conv7")
LABELS = {"unfold": "unfold", "conv3": "conv3×3", "conv7": "conv7×7"}
Key = tuple[str, int, int, int]


def label(impl: str) -> str:
    return LABELS.get(impl, f"SASA2d {impl}")


def build(impl: str, channels: int, ks: int) -> nn.Module:
    """A fresh module for one implementation, weights from seed 0 (the same for every SASA2d backend)."""
    torch.manual_seed(0)
    if impl in ("conv3", "conv7"):
        size = 3 if impl == "conv3" else 7
        return nn.Conv2d(channels, channels, size, padding=size // 2, bias=False)
    return UnfoldSASA(make_sasa(channels, ks)) if impl == "unfold" else make_sasa(channels, ks, impl)


def memory_limit(device: torch.device) -> float:
    """Bytes the unfold baseline may need: a share of the GPU's memory (CPU dry runs: 6 GiB as on CPU)."""
    if device.type != "cuda":
        return float(UNFOLD_BUDGET_BYTES)
    return UNFOLD_MEMORY_SHARE * torch.cuda.get_device_properties(device).total_memory


def measure_cell(row: dict, impl: str, key: Key, device: torch.device, batch: int, reps: int, cap_s: float) -> None:
    """Time and peak memory of one implementation at one configuration, written into ``row`` (never raises)."""
    dtype_name, channels, hw, ks = key
    dtype = DTYPES[dtype_name]
    if impl == "unfold":
        need = 6 * torch.finfo(dtype).bits // 8 * batch * channels * ks * ks * hw * hw
        if need > memory_limit(device):
            row["unfold_note"] = f"skipped (needs ~{need / 2**30:.0f} GiB)"
            return
    try:
        module = build(impl, channels, ks).to(device, dtype)
        gen = torch.Generator(device=device).manual_seed(1)
        x = torch.randn(batch, channels, hw, hw, device=device, dtype=dtype, generator=gen, requires_grad=True)
        grad = torch.randn(batch, channels, hw, hw, device=device, dtype=dtype, generator=gen)

        def fn() -> None:
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x).backward(grad)

        timing = device_ms(fn, device, warmup=2, reps=reps, cap_s=cap_s)
        row.update({f"{impl}_{name}": value for name, value in timing.items()})
        row[f"{impl}_mib"] = device_peak_mib(fn, device)
    except torch.cuda.OutOfMemoryError:
        row[f"{impl}_note"] = "out of memory"
    except Exception as exc:  # a failing kernel must not stop the sweep: record it and go on
        row[f"{impl}_note"] = f"error: {type(exc).__name__}"
        print(f"{stamp()} {label(impl)} failed at {key}:\n{traceback.format_exc()}", flush=True)
    finally:
        module = x = grad = None  # free before the next job
        if device.type == "cuda":
            torch.cuda.empty_cache()


def cell(row: dict, impl: str, field: str = "ms") -> str:
    value = row.get(f"{impl}_{field}")
    if value is not None:
        return num(value, 2 if field == "ms" else 1)
    return row.get(f"{impl}_note", "not run (time budget)" if field == "ms" else "–")


def rel(row: dict, a: str, b: str, field: str = "ms") -> str:
    x, y = row.get(f"{a}_{field}"), row.get(f"{b}_{field}")
    return "–" if x is None or y is None else f"{x / y:.2f}×"


def table(rows: dict[Key, dict], impls: list[str], first: str) -> str:
    head = ["dtype", "C", "H×W", "k", *(f"{label(i)} ms" for i in impls)]
    head += [f"unfold / {first} time", f"{first} / conv3×3 time", f"{first} / conv7×7 time"]
    head += [*(f"{label(i)} MiB" for i in impls), f"{first} / unfold memory"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(rows, key=lambda k: (k[0] != "bf16", k[1:])):
        r = rows[key]
        memory = r.get(f"{first}_mib"), r.get("unfold_mib")
        mem_ratio = "–" if None in memory or not memory[0] else f"1/{memory[1] / memory[0]:.0f}"
        cells = [key[0], str(key[1]), f"{key[2]}x{key[2]}", str(key[3]), *(cell(r, i) for i in impls)]
        cells += [rel(r, "unfold", first), rel(r, first, "conv3"), rel(r, first, "conv7")]
        cells += [*(cell(r, i, "mib") for i in impls), mem_ratio]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: dict[Key, dict], first: str) -> str:
    """The issue's GPU layer targets, checked at (bf16, C=128, 32×32, k=7, batch 64)."""
    r = rows.get(TARGET, {})
    t, c3, u = r.get(f"{first}_ms"), r.get("conv3_ms"), r.get("unfold_ms")
    mt, mu = r.get(f"{first}_mib"), r.get("unfold_mib")

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else "met" if ok else "MISSED"

    checks = [
        (f"{first} ≤ 1.5× conv3×3 time", None if None in (t, c3) else t / c3, "×", lambda v: v <= 1.5),
        (f"{first} ≥ 20× faster than unfold", None if None in (t, u) else u / t, "×", lambda v: v >= 20),
        (
            f"{first} memory ≤ 1/20 of unfold's",
            None if None in (mt, mu) or not mt else mu / mt,
            "× less",
            lambda v: v >= 20,
        ),
    ]
    lines = ["Targets at bf16, C=128, 32×32, k=7, batch 64 (issue 8):", ""]
    for text, value, unit, ok in checks:
        shown = "–" if value is None else f"{value:.2f}{unit}"
        lines.append(f"- {text}: {shown} — {verdict(None if value is None else ok(value))}")
    return "\n".join(lines)


def write(out: Path, rows: dict[Key, dict], impls: list[str], note: str) -> None:
    first = impls[0]
    baselines = [i for i in impls if i in BASELINES]
    order = [first, *(i for i in impls if i not in BASELINES and i != first), *baselines]
    title = "CUDA" if torch.cuda.is_available() else "CPU dry run of the CUDA sweep"
    text = f"# SASA2d benchmark ({title})\n\n{note}\n\n{targets(rows, first)}\n\n{table(rows, order, first)}\n"
    (out / "gpu_sasa.md").write_text(text)
    fields = ["dtype", "C", "HxW", "k"]
    fields += [f"{i}_{f}" for i in order for f in ("ms", "min_ms", "reps", "first_s", "mib", "note")]
    with (out / "gpu_sasa.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for (dtype, channels, hw, ks), r in sorted(rows.items()):
            writer.writerow({"dtype": dtype, "C": channels, "HxW": f"{hw}x{hw}", "k": ks, **r})


def jobs(keys: list[Key], backends: list[str]) -> list[tuple[Key, list[str]]]:
    """(configuration, implementations) in priority order (see the module docstring)."""
    ordered = sorted(keys, key=lambda k: (k != TARGET, k[0] != "bf16", k[3] != 7))
    primary, others = [backends[0], *BASELINES], backends[1:]
    todo = [(key, primary) for key in ordered] + [(key, others) for key in ordered[1:] if others]
    if others and ordered and ordered[0] == TARGET:  # the other backends at the target configuration come second
        todo.insert(1, (TARGET, others))
    elif others and ordered:
        todo.append((ordered[0], others))
    return todo


def run_sweep(
    configs: list[tuple[int, int, int]],
    dtypes: list[str],
    backends: list[str],
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    """Run the sweep and write ``gpu_sasa.md`` / ``gpu_sasa.csv`` into ``args.out``."""
    torch.backends.cudnn.benchmark = True
    batch, reps = args.batch or GPU_BATCH, args.reps or 20
    budget = Budget(args.budget_s)
    keys = [(dtype, c, hw, k) for dtype in dtypes for c, hw, k in configs]
    rows: dict[Key, dict] = {key: {} for key in keys}
    impls = [*backends, *BASELINES]
    args.out.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []

    def note() -> str:
        cuda = device.type == "cuda"
        timer = "CUDA-event-timed" if cuda else "wall-clock-timed (CPU dry run)"
        memory = "torch.cuda.max_memory_allocated" if cuda else "live CPU-allocator bytes (profiler)"
        parts = [
            f"Batch {batch}, {HEADS} heads, relative positions, stride 1; forward + backward (input and parameter "
            "gradients, fixed random output gradient) with module and input in the row's dtype; median of up to "
            f"{reps} {timer} calls after 2 warm-ups (timed calls stop after {args.cap_s} s).",
            f"Peak memory: {memory} during one forward + backward above what was allocated before it.",
            "cuDNN convolutions with cudnn.benchmark on (fp32 ones may use TF32, torch's default)." if cuda else "",
            f"{machine(device)}; sweep took {budget.elapsed():.0f} s",
            f"(budget {budget.seconds:.0f} s; {len(skipped)} job(s) not run for lack of time)." if skipped else ".",
        ]
        return " ".join(part for part in parts if part).replace(" .", ".")

    for key, job_impls in jobs(keys, backends):
        if budget.spent():
            skipped.append(f"{key} {job_impls}")
            continue
        print(f"{stamp()} {key} {job_impls} ({budget.elapsed():.0f} s)", flush=True)
        for impl in job_impls:
            measure_cell(rows[key], impl, key, device, batch, reps, args.cap_s)
        print("   " + ", ".join(f"{label(i)} {cell(rows[key], i)}" for i in job_impls), flush=True)
        write(args.out, rows, impls, note())
    write(args.out, rows, impls, note())
    print(f"{stamp()} wrote {args.out / 'gpu_sasa.md'} and {args.out / 'gpu_sasa.csv'}", flush=True)
