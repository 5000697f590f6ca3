"""Benchmark: SASA2d vs an unfold-based SASA (as public reimplementations write it) vs convolutions.

Run by hand (not a test):  python -m benchmarks.sasa [--device cpu|cuda] [--quick] [--out benchmarks/results]

CPU (default; results ``sasa.md``/``.csv``): for each configuration (batch 8, float32, 2 CPU threads) it times
forward + backward (input gradients included; median of several repetitions after a warm-up, wall clock) of
SASA2d, the unfold baseline and a 3×3 convolution, and measures the peak of live CPU-allocator bytes during one
forward + backward (allocation/free events recorded by torch.profiler with profile_memory=True, relative to the
start of the pass, so the input and the weights are not counted), and the first-pass peak RSS: the rise of the
peak resident memory (``VmHWM``) during the first forward + backward in a fresh process (one per module and
configuration), which also counts what the first call loads (imported modules, allocator caches). The unfold
baseline is skipped where its estimated peak (6 unfolded B·C·k²·H·W tensors) would not fit in the memory budget.

CUDA (``--device cuda``; results ``gpu_sasa.md``/``.csv``): the same sweep at batch 64 in fp32 and bf16 (module
and input cast), one column per SASA2d backend (``--backends triton,torch``) plus the unfold baseline, a 3×3
and a 7×7 convolution (cuDNN, ``cudnn.benchmark`` on); CUDA-event times and ``torch.cuda.max_memory_allocated``
peaks (see benchmarks/sasa_cuda.py). Jobs run in priority order under a time budget (``--budget-s``); the tables
are rewritten after every job, so an interrupted run still leaves them.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmarks.timing import (
    check_device,
    cpu_name,
    cpu_peak_mib,
    first_call_rss_mib,
    interleaved_ms,
    parse_list,
    wait_for_load,
)
from sasa.kernels import BACKENDS
from sasa.layers import SASA2d
from sasa.layers.sasa2d import absolute_encoding

BATCH = 8
HEADS = 8
FULL = [(c, hw, k) for c in (64, 128, 256) for hw in (32, 56) for k in (3, 7, 11)]
QUICK = [(128, 32, 3), (128, 32, 7)]
UNFOLD_BUDGET_BYTES = 6 << 30
MAX_ATTEMPTS = 3


def make_sasa(channels: int, kernel_size: int, backend: str = "auto", heads: int = HEADS, **options) -> SASA2d:
    """SASA2d(channels → channels) with relative positions; ``backend="auto"`` is the layer's default."""
    kwargs = {} if backend == "auto" else {"backend": backend}
    return SASA2d(channels, channels, kernel_size, heads, options.pop("pos_enc", "relative"), **options, **kwargs)


class UnfoldSASA(nn.Module):
    """Per-head SASA the way public reimplementations write it: unfold k and v into (B, C, k², H·W) tensors.

    Shares the weights of ``layer`` (same q/k/v projections, positional encoding, masked padding, stride-2 pool),
    so its output equals SASA2d's; only the memory layout of the windows differs. Written independently of the
    library's window kernels, it also serves as the reference of benchmarks/gpu_correctness.py.
    """

    def __init__(self, layer: SASA2d) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        m = self.layer
        B, _, H, W = x.shape
        ks, heads, d, p = m.kernel_size, m.heads, m.head_dim, m.kernel_size // 2
        q = m.query(x).view(B, heads, d, 1, H * W)
        key = m.key(x)
        if m.pos_enc == "absolute":
            key = key + absolute_encoding(d, H, W, device=x.device, dtype=key.dtype).repeat(heads, 1, 1)
        k = F.unfold(key, ks, padding=p).view(B, heads, d, ks * ks, H * W)
        v = F.unfold(m.value(x), ks, padding=p).view(B, heads, d, ks * ks, H * W)
        if m.pos_enc == "relative":
            rows = m.rel_rows[:, None].expand(ks, ks, heads, d // 2)  # (dy, dx, heads, d//2)
            cols = m.rel_cols[None, :].expand(ks, ks, heads, d - d // 2)
            rel = torch.cat([rows, cols], dim=-1).reshape(ks * ks, heads, d).permute(1, 2, 0)[..., None]
            k = k + rel.to(k.dtype)  # rel: (heads, d, k², 1)
        logits = (q * k).sum(2)  # (B, heads, k², H·W)
        inside = F.unfold(x.new_ones(1, 1, H, W), ks, padding=p)  # (1, k², H·W): 1 inside the image
        logits = logits.masked_fill(inside == 0, float("-inf"))
        attn = torch.softmax(logits, dim=2)
        out = (attn.unsqueeze(2) * v).sum(3)  # (B, heads, d, H·W)
        return m.pool(out.view(B, heads * d, H, W))


def fwd_bwd(module: nn.Module, x: Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    module(x).sum().backward()


def measure(
    configs: list[tuple[int, int, int]],
    reps: int,
    max_load: float | None = None,
    min_share: float = 0.0,
    backend: str = "auto",
    batch: int = BATCH,
) -> list[dict]:
    rows = []
    for channels, hw, ks in configs:
        torch.manual_seed(0)
        x = torch.randn(batch, channels, hw, hw, requires_grad=True)
        sasa = make_sasa(channels, ks, backend)
        conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        unfold_bytes = 6 * 4 * batch * channels * ks * ks * hw * hw
        modules = {"sasa": sasa, "unfold": UnfoldSASA(sasa), "conv": conv}
        row: dict = {"C": channels, "HxW": f"{hw}x{hw}", "k": ks}
        if unfold_bytes > UNFOLD_BUDGET_BYTES:
            del modules["unfold"]
            row["unfold_ms"] = row["unfold_min_ms"] = row["unfold_mib"] = row["unfold_rss_mib"] = None
            row["unfold_skipped"] = f"needs ~{unfold_bytes / 2**30:.0f} GiB"
        fns = {name: (lambda m=module, x=x: fwd_bwd(m, x)) for name, module in modules.items()}
        for attempt in range(1, MAX_ATTEMPTS + 1):  # re-measure a row that other processes disturbed
            row["load"] = wait_for_load(max_load)
            timings, row["cpu_share"] = interleaved_ms(fns, reps)
            row["attempts"] = attempt
            if row["cpu_share"] >= min_share:
                break
        for name, (median, fastest) in timings.items():
            row[f"{name}_ms"], row[f"{name}_min_ms"] = median, fastest
        for name, fn in fns.items():
            row[f"{name}_mib"] = cpu_peak_mib(fn)
            row[f"{name}_rss_mib"] = first_pass_rss_mib(name, channels, hw, ks, batch, backend)
        print(format_row(row), flush=True)
        rows.append(row)
    return rows


def first_pass_rss_mib(name: str, channels: int, hw: int, ks: int, batch: int, backend: str) -> float:
    """Peak-RSS rise of module ``name``'s first forward + backward, in a fresh process (``--rss-child``)."""
    spec = f"{name}:{channels}:{hw}:{ks}:{batch}:{backend}"
    done = subprocess.run([sys.executable, "-m", "benchmarks.sasa", "--rss-child", spec], capture_output=True,
                          text=True, check=True, timeout=1800)
    return float(done.stdout.split()[-1])


def rss_child(spec: str) -> None:
    """(In a fresh process) build the module and input of ``spec`` (name:C:HW:k:batch:backend), then print the
    peak-RSS rise of one forward + backward (:func:`benchmarks.timing.first_call_rss_mib`)."""
    name, channels, hw, ks, batch, backend = spec.split(":")
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = torch.randn(int(batch), int(channels), int(hw), int(hw), requires_grad=True)
    sasa = make_sasa(int(channels), int(ks), backend)
    conv = nn.Conv2d(int(channels), int(channels), 3, padding=1, bias=False)
    module = {"sasa": sasa, "unfold": UnfoldSASA(sasa), "conv": conv}[name]
    print(f"{first_call_rss_mib(lambda: fwd_bwd(module, x)):.1f}")


def ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{a / b:.1f}×"


def num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


HEADER = (
    "| C | H×W | k | SASA2d ms | unfold ms | conv3×3 ms | unfold / SASA2d time | SASA2d / conv time "
    "| SASA2d MiB | unfold MiB | conv MiB | SASA2d / unfold memory | SASA2d RSS MiB | unfold RSS MiB "
    "| conv RSS MiB | SASA2d / unfold RSS | load | CPU share |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def format_row(r: dict) -> str:
    unfold_ms = num(r["unfold_ms"]) if r["unfold_ms"] is not None else f"skipped ({r['unfold_skipped']})"
    mem_ratio = "–" if r["unfold_mib"] is None else f"1/{r['unfold_mib'] / r['sasa_mib']:.0f}"
    rss_ratio = "–" if r["unfold_rss_mib"] is None else f"{r['sasa_rss_mib'] / r['unfold_rss_mib']:.3f}"
    return (
        f"| {r['C']} | {r['HxW']} | {r['k']} | {num(r['sasa_ms'])} | {unfold_ms} | {num(r['conv_ms'])} "
        f"| {ratio(r['unfold_ms'], r['sasa_ms'])} | {ratio(r['sasa_ms'], r['conv_ms'])} "
        f"| {num(r['sasa_mib'])} | {num(r['unfold_mib'])} | {num(r['conv_mib'])} | {mem_ratio} "
        f"| {num(r['sasa_rss_mib'])} | {num(r['unfold_rss_mib'])} | {num(r['conv_rss_mib'])} | {rss_ratio} "
        f"| {r['load']:.1f} "
        f"| {r['cpu_share']:.2f} |"
    )


def parse_configs(value: str) -> list[tuple[int, int, int]]:
    """``"128:32:7,64:56:3"`` → [(C, H=W, k), ...]; ValueError naming ``--configs`` otherwise."""
    try:
        configs = [tuple(int(part) for part in item.split(":")) for item in value.split(",") if item.strip()]
    except ValueError:
        configs = []
    if not configs or any(len(c) != 3 or min(c) < 1 or c[2] % 2 == 0 for c in configs):
        raise ValueError(f"--configs: invalid value {value!r}; expected C:HW:k items (k odd), e.g. 128:32:7,64:56:3")
    return configs  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--quick", action="store_true", help="only C=128, 32×32, k ∈ {3, 7}")
    parser.add_argument("--configs", default=None, help="explicit C:HW:k list (e.g. 128:32:7,64:56:3)")
    parser.add_argument("--batch", type=int, default=None, help=f"batch size (default {BATCH} on CPU, 64 on CUDA)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per measurement (CPU 5, CUDA 20)")
    parser.add_argument("--backend", default="auto", help="CPU: the SASA2d backend (auto, torch, triton)")
    parser.add_argument("--backends", default="triton,torch", help="CUDA: SASA2d backends, one column each")
    parser.add_argument("--dtypes", default="bf16,fp32", help="CUDA: fp32 and/or bf16")
    parser.add_argument(
        "--gpu-sweep", action="store_true", help="on CPU: run the CUDA sweep's code (dry run of gpu_check.sh)"
    )
    parser.add_argument("--budget-s", type=float, default=None, help="CUDA: start no new job after this many s")
    parser.add_argument("--cap-s", type=float, default=0.5, help="CUDA: stop timed reps of one job after this")
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="CPU: before each configuration wait (up to 30 min) until the 1-minute load average is below this",
    )
    parser.add_argument(
        "--min-share",
        type=float,
        default=0.0,
        help=f"CPU: re-measure a row (up to {MAX_ATTEMPTS} tries) whose CPU share came out below this",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for the .md/.csv")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rss_child is not None:
        rss_child(args.rss_child)
        return
    try:
        device = check_device(args.device)
        configs = parse_configs(args.configs) if args.configs else QUICK if args.quick else FULL
        parse_list(args.backend, BACKENDS, "--backend")
        backends = parse_list(args.backends, BACKENDS, "--backends")
        dtypes = parse_list(args.dtypes, ("fp32", "bf16"), "--dtypes")
        if args.batch is not None and args.batch < 1:
            raise ValueError(f"--batch: must be a positive integer, got {args.batch}")
    except ValueError as exc:
        parser.error(str(exc))
    if device.type == "cuda" or args.gpu_sweep:
        from benchmarks.sasa_cuda import run_sweep

        run_sweep(configs, dtypes, backends, args, device)
        return
    run_cpu(configs, args, argv)


def run_cpu(configs: list[tuple[int, int, int]], args: argparse.Namespace, argv: list[str] | None = None) -> None:
    torch.set_num_threads(2)
    reps = args.reps or 5
    batch = args.batch or BATCH
    load_before = os.getloadavg()[0]
    print(HEADER)
    started = time.time()
    rows = measure(configs, reps, args.max_load, args.min_share, args.backend, batch)
    load_after = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    name = "sasa_quick" if args.quick or args.configs else "sasa"
    keys = ["C", "HxW", "k", "sasa_ms", "unfold_ms", "conv_ms", "sasa_min_ms", "unfold_min_ms", "conv_min_ms"]
    keys += ["sasa_mib", "unfold_mib", "conv_mib", "sasa_rss_mib", "unfold_rss_mib", "conv_rss_mib", "load"]
    keys += ["cpu_share", "attempts"]
    with (args.out / f"{name}.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*keys, "unfold_skipped"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    waited = "" if args.max_load is None else f" (each row waited for a load below {args.max_load})"
    backend = "" if args.backend == "auto" else f" SASA2d backend {args.backend!r}."
    command = " ".join(["python -m benchmarks.sasa", *(argv if argv is not None else sys.argv[1:])])
    note = (
        f"`{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}. "
        f"Batch {batch}, float32, {HEADS} heads, relative positions, forward + backward (input gradients "
        f"included), median of {reps} runs after a warm-up, the three taking turns; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {cpu_name()}.{backend} Peak memory: live CPU-allocator bytes during one "
        "forward + backward from torch.profiler allocation/free events (input and weights excluded); *RSS*: the rise "
        "of the peak resident set (VmHWM) during the first forward + backward in a fresh process, one per cell. "
        "Other processes shared the 2 cores: *load* is the 1-minute load average when a row started"
        f"{waited}; *CPU share* is this process's CPU time / (wall time × threads) over the row's timed runs "
        "(near 1 when both threads kept the cores busy; other processes, and threads waiting for each other, "
        f"lower it; rows below {args.min_share} were re-measured, up to {MAX_ATTEMPTS} tries). "
        f"Load {load_before:.1f} before and {load_after:.1f} after the {(time.time() - started) / 60:.0f}-minute "
        "run. Timings are only comparable within a row."
    )
    table = "\n".join([HEADER, *(format_row(r) for r in rows)])
    (args.out / f"{name}.md").write_text(f"# SASA2d benchmark\n\n{note}\n\n{table}\n")
    print(f"\n{note}\nwrote {args.out / (name + '.md')} and {args.out / (name + '.csv')}")


if __name__ == "__main__":
    main()
