"""Training throughput of ResNet-26 conv / attention / full: ``python -m benchmarks.models [--device cpu|cuda]``.

One training step = forward, cross-entropy loss, backward and a Nesterov-SGD step (momentum 0.9, weight decay
5e-5, as the studies train) on a fixed random batch; images/s = batch / median step time. Sizes (``--sizes``):

- ``study``: the embedded studies' shape (studies/window_size.yaml): 16×16 one-channel images (digits),
  quarter-width ResNet-26 (``width=0.25``, attention layers 8×8 … 2×2 with 16–128 channels), 4 heads, k=7,
  small-input stem, batch 64, 10 classes;
- ``cifar``: 32×32 RGB, full width, 8 heads, k=7, small-input stem, batch 128, 10 classes.

CPU: float32, the models take turns step by step (load drifts hit all alike), wall clock, CPU share as in
benchmarks/sasa.py. CUDA: bf16 autocast (``--precision``), CUDA-event timing of each model's steps after
warm-up steps (the first includes Triton JIT compilation and cuDNN autotuning), and the peak of
``torch.cuda.max_memory_allocated`` during one step. The table shows each model's images/s relative to the conv
model of the same size, measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.timing import (
    Budget,
    check_device,
    device_ms,
    device_peak_mib,
    interleaved_ms,
    machine,
    parse_list,
    stamp,
)
from sasa import create_model
from sasa.kernels import BACKENDS
from sasa.models import PRESETS

SIZES: dict[str, dict] = {
    "study": {"image": 16, "in_channels": 1, "batch": 64, "width": 0.25, "heads": 4},
    "cifar": {"image": 32, "in_channels": 3, "batch": 128, "width": 1.0, "heads": 8},
}
BACKBONES = tuple(PRESETS)  # the factory's presets: conv, attention, full
NUM_CLASSES = 10
KERNEL_SIZE = 7


def build_step(
    size: str, backbone: str, device: torch.device, backend: str, precision: str, channels_last: bool, batch: int
) -> Callable[[], None]:
    """A closure running one training step of ResNet-26 ``backbone`` at ``size`` on a fixed random batch."""
    shape = SIZES[size]
    torch.manual_seed(0)
    options = {"backend": backend} if backend != "auto" else {}
    model: nn.Module = create_model(
        "resnet26",
        NUM_CLASSES,
        backbone=backbone,
        small_input=True,
        width=shape["width"],
        heads=shape["heads"],
        kernel_size=KERNEL_SIZE,
        in_channels=shape["in_channels"],
        **options,
    ).to(device)
    x = torch.randn(batch, shape["in_channels"], shape["image"], shape["image"], device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-5)
    autocast = precision == "bf16" and device.type == "cuda"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16) if autocast else nullcontext():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def measure_size(size: str, backbones: list[str], args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Rows (one per backbone) for one size; failures are recorded in the row, not raised."""
    batch = args.batch or SIZES[size]["batch"]
    rows = [{"size": size, "model": b, "batch": batch} for b in backbones]
    steps: dict[str, Callable[[], None]] = {}
    for row in rows:
        try:
            steps[row["model"]] = build_step(
                size, row["model"], device, args.backend, args.precision, args.channels_last, batch
            )
        except Exception as exc:
            row["note"] = f"error: {type(exc).__name__}: {exc}"[:120]
            print(traceback.format_exc(), flush=True)
    if device.type == "cpu":  # the models take turns, step by step
        try:
            timings, share = interleaved_ms(steps, args.steps)
        except Exception as exc:
            print(traceback.format_exc(), flush=True)
            for row in rows:
                row.setdefault("note", f"error: {type(exc).__name__}"[:120])
            return rows
        for row in rows:
            if row["model"] in timings:
                row["ms"], row["min_ms"] = timings[row["model"]]
                row["cpu_share"], row["reps"] = share, args.steps
        return rows
    for row in rows:
        if row["model"] not in steps:
            continue
        if args.budget.spent():
            row["note"] = "not run (time budget)"
            continue
        print(f"{stamp()} {size} {row['model']}", flush=True)
        try:
            row.update(device_ms(steps[row["model"]], device, warmup=3, reps=args.steps, cap_s=args.cap_s))
            row["mib"] = device_peak_mib(steps[row["model"]], device)
        except Exception as exc:  # e.g. a kernel failing: record it, measure the others
            print(traceback.format_exc(), flush=True)
            row["note"] = ("out of memory" if isinstance(exc, torch.cuda.OutOfMemoryError) else f"error: {exc}")[:120]
        steps.pop(row["model"])
        torch.cuda.empty_cache()
    return rows


def images_per_s(row: dict) -> float | None:
    return None if row.get("ms") is None else row["batch"] / (row["ms"] / 1e3)


def table(rows: list[dict], device: torch.device) -> str:
    head = ["size", "model", "batch", "images/s", "step ms (median)", "images/s vs conv", "step time vs conv"]
    head += ["peak MiB", "first step s"] if device.type == "cuda" else ["CPU share"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        conv = next((r for r in rows if r["size"] == row["size"] and r["model"] == "conv"), {})
        ips, conv_ips = images_per_s(row), images_per_s(conv)
        if ips is None:
            cells = [row.get("note", "not run"), "–", "–", "–"]
        else:
            vs = "–" if conv_ips is None else f"{ips / conv_ips:.2f}"
            slower = "–" if conv_ips is None else f"{conv_ips / ips:.2f}×"
            cells = [f"{ips:.1f}", f"{row['ms']:.1f}", vs, slower]
        if device.type == "cuda":
            cells += [f"{row['mib']:.0f}" if "mib" in row else "–", f"{row.get('first_s', 0):.1f}"]
        else:
            cells += [f"{row['cpu_share']:.2f}" if "cpu_share" in row else "–"]
        lines.append(f"| {row['size']} | {row['model']} | {row['batch']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[dict], device: torch.device) -> str:
    """Issue 8's targets: attention ≥ 50% of conv images/s at CIFAR shape on a GPU; ≤ 3× conv step time at
    study size on the CPU (measured in the same run)."""
    size, bound = ("cifar", 0.5) if device.type == "cuda" else ("study", 1 / 3)
    found = {r["model"]: images_per_s(r) for r in rows if r["size"] == size}
    conv, attention = found.get("conv"), found.get("attention")
    if conv is None or attention is None:
        return f"Target ({size}): not measured."
    share = attention / conv
    verdict = "met" if share >= bound else "MISSED"
    if device.type == "cuda":
        return f"Target: attention ResNet-26 images/s ≥ 50% of conv at CIFAR shape: {share:.0%} — {verdict}."
    return f"Target: attention ResNet-26 step time ≤ 3× conv at study size: {1 / share:.2f}× — {verdict}."


def write(out: Path, rows: list[dict], note: str, device: torch.device) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    body = f"{note}\n\n{targets(rows, device)}\n\n{table(rows, device)}"
    out.write_text(f"# ResNet-26 training throughput ({device.type})\n\n{body}\n")
    fields = ["size", "model", "batch", "ms", "min_ms", "reps", "first_s", "mib", "cpu_share", "note"]
    with out.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*fields, "images_per_s"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, "images_per_s": images_per_s(row)} for row in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--sizes", default=None, help="study,cifar (default: both on CPU, cifar on CUDA)")
    parser.add_argument("--models", default=",".join(BACKBONES), help="subset of conv,attention,full")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model (CPU 5, CUDA 20)")
    parser.add_argument("--batch", type=int, default=None, help="override the batch size of every size")
    parser.add_argument("--backend", default="auto", help="SASA2d backend: auto (default), torch, triton")
    parser.add_argument("--precision", default=None, help="fp32 or bf16 (autocast; CUDA only; default there)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--threads", type=int, default=None, help="CPU: torch threads (default: torch's)")
    parser.add_argument("--budget-s", type=float, default=None, help="CUDA: start no new model after this")
    parser.add_argument("--cap-s", type=float, default=3.0, help="CUDA: stop timed steps of a model after this")
    parser.add_argument("--out", type=Path, default=None, help="markdown file (a .csv is written beside it)")
    args = parser.parse_args(argv)
    try:
        device = check_device(args.device)
        sizes = parse_list(args.sizes or ("cifar" if device.type == "cuda" else "study,cifar"), tuple(SIZES), "--sizes")
        backbones = parse_list(args.models, BACKBONES, "--models")
        parse_list(args.backend, BACKENDS, "--backend")
        args.precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
        parse_list(args.precision, ("fp32", "bf16"), "--precision")
        if args.precision == "bf16" and device.type == "cpu":
            raise ValueError("--precision: bf16 autocast is measured on CUDA only; use fp32 on cpu")
        for option in ("steps", "batch", "threads"):
            if getattr(args, option) is not None and getattr(args, option) < 1:
                raise ValueError(f"--{option}: must be a positive integer, got {getattr(args, option)}")
    except ValueError as exc:
        parser.error(str(exc))
    args.steps = args.steps or (20 if device.type == "cuda" else 5)
    args.budget = Budget(args.budget_s)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    load_before, started = os.getloadavg()[0], time.time()
    rows: list[dict] = []
    for size in sizes:
        rows += measure_size(size, backbones, args, device)
        print(table(rows, device), flush=True)
    if device.type == "cuda":
        how = f"{args.precision} autocast" if args.precision == "bf16" else "fp32"
        how += f", median of up to {args.steps} CUDA-event-timed steps after 3 warm-up steps (at most {args.cap_s} s)"
    else:
        how = f"fp32, median of {args.steps} wall-clock steps after a warm-up step, the models taking turns"
        how += f"; load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after"
    layout = "channels_last" if args.channels_last else "contiguous (NCHW)"
    note = (
        f"`python -m benchmarks.models {' '.join(sys.argv[1:] if argv is None else argv)}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"; {machine(device)}. {how}; SASA2d backend {args.backend!r}; {layout}; took {time.time() - started:.0f} s."
    )
    print(f"\n{note}\n{targets(rows, device)}", flush=True)
    if args.out:
        write(args.out, rows, note, device)
        print(f"wrote {args.out} and {args.out.with_suffix('.csv')}", flush=True)


if __name__ == "__main__":
    main()
