"""Correctness of SASA2d's fused backend on the GPU: ``python -m benchmarks.gpu_correctness [--out FILE]``.

For each case (shapes chosen to hit the kernel's edges: head dims 6–64, windows 3–11, windows larger than the
image, odd and non-square sizes, stride 2, every positional encoding) and each precision — fp32 (module and
input), bf16 (module and input cast) and bf16 autocast (fp32 weights, as in mixed-precision training) — the
layer with ``backend=--backend`` (default "triton") runs forward and backward with a random output gradient.
The reference is benchmarks.sasa.UnfoldSASA (written independently of the library's window kernels) in float64
on the same device with the same (rounded) weights and input. Errors are max |a − ref| / max |ref| of the output,
the input gradient and the gradient of every parameter (q/k/v projections and relative embeddings); the table
also shows the torch backend's error at the same precision, for scale. After the first case, a quarter-width
attention ResNet-26 built with ``create_model(..., backend=...)`` is compared with the same model on the torch
backend in float64 (logits, input gradient and the worst parameter gradient).

TF32 is switched off (cuDNN and matmul), so fp32 means fp32. Tolerances (normalised max error): fp32 1e-3, bf16
5e-2 (on the CPU the torch backend's own bf16 errors are 0.6–2.1e-2 on these cases). Exit status 1 if any
case fails, 0 otherwise (cases not reached within ``--budget-s`` are listed).
``--device cpu --backend torch`` is a dry run on a machine without a GPU (Triton needs TRITON_INTERPRET=1 there).
"""

from __future__ import annotations

import argparse
import math
import sys
import traceback
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks.sasa import UnfoldSASA, make_sasa
from benchmarks.timing import Budget, check_device, machine, parse_list, stamp
from sasa import create_model

TOLERANCE = {"fp32": 1e-3, "bf16": 5e-2, "bf16-autocast": 5e-2}
PRECISIONS = tuple(TOLERANCE)
# (batch, channels, heads, H, W, kernel_size, pos_enc, stride), most important first.
CASES = [
    (2, 128, 8, 32, 32, 7, "relative", 1),  # the benchmark's target layer (d=16), several tiles
    (2, 64, 8, 16, 16, 7, "relative", 1),  # d=8
    (2, 256, 8, 9, 9, 11, "relative", 1),  # d=32, window larger than the image
    (2, 64, 4, 13, 10, 5, "relative", 2),  # odd, non-square, stride 2
    (2, 24, 4, 8, 8, 7, "relative", 1),  # d=6: not a power of two, odd d//2
    (1, 512, 8, 4, 4, 7, "relative", 1),  # d=64 on 4×4 (CIFAR ResNet-26 layer group 4)
    (2, 32, 8, 12, 12, 3, "none", 1),  # d=4, no positional term
    (2, 64, 8, 11, 11, 9, "absolute", 1),
    (1, 64, 8, 56, 56, 11, "relative", 1),  # large image, large window
    (1, 16, 4, 5, 5, 3, "relative", 1),  # tiny (d=4): quick smoke runs
]


def parse_cases(value: str | None) -> list[int]:
    """``"1-3,9"`` → 0-based indices into CASES (1-based in the option); None → all."""
    if value is None:
        return list(range(len(CASES)))
    picked: list[int] = []
    try:
        for item in value.split(","):
            first, _, last = item.strip().partition("-")
            picked += range(int(first) - 1, int(last or first))
    except ValueError:
        picked = [-1]
    if not picked or any(not 0 <= i < len(CASES) for i in picked):
        raise ValueError(f"--cases: invalid value {value!r}; expected 1-based case numbers 1–{len(CASES)}, e.g. 1-3,9")
    return picked


def rel_err(a: Tensor | None, ref: Tensor | None) -> float:
    """max |a − ref| / max |ref| in float64 (NaN if a gradient is missing or not finite)."""
    if a is None or ref is None:
        return math.nan
    a, ref = a.detach().double(), ref.detach().double()
    scale = ref.abs().max().item() or 1.0
    err = (a - ref).abs().max().item() / scale
    return err if math.isfinite(err) else math.nan


def run_layer(layer: nn.Module, x: Tensor, grad: Tensor, autocast: bool) -> tuple[Tensor, dict[str, Tensor | None]]:
    """Output and gradients (``"x"`` and every parameter) of one forward + backward."""
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    ctx = torch.autocast(x.device.type, dtype=torch.bfloat16) if autocast else nullcontext()
    with ctx:
        out = layer(x)
    out.backward(grad.to(out.dtype))
    grads = {"x": x.grad, **{name: p.grad for name, p in layer.named_parameters()}}
    return out.detach(), grads


def errors(out: Tensor, grads: dict, ref_out: Tensor, ref_grads: dict) -> dict[str, float]:
    result = {"out": rel_err(out, ref_out)}
    for name, ref in ref_grads.items():
        result[name.removeprefix("layer.")] = rel_err(grads.get(name.removeprefix("layer.")), ref)
    return result


def check_case(case: tuple, precision: str, backend: str, device: torch.device) -> dict:
    """One case at one precision: errors of the backend under test and of the torch backend vs float64 unfold."""
    batch, channels, heads, height, width, ks, pos_enc, stride = case
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    torch.manual_seed(0)
    layer = make_sasa(channels, ks, backend, heads, pos_enc=pos_enc, stride=stride).to(device, dtype)
    if layer.rel_rows is not None:  # larger than the N(0, 1/d) init, so the relative term matters in the check
        with torch.no_grad():
            layer.rel_rows.mul_(4.0)
            layer.rel_cols.mul_(4.0)
    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(batch, channels, height, width, device=device, generator=gen).to(dtype)
    out_h, out_w = -(-height // stride), -(-width // stride)
    grad = torch.randn(batch, channels, out_h, out_w, device=device, generator=gen).to(dtype)
    autocast = precision == "bf16-autocast"
    out, grads = run_layer(layer, x, grad, autocast)
    reference = make_sasa(channels, ks, "torch", heads, pos_enc=pos_enc, stride=stride).to(device, torch.float64)
    reference.load_state_dict(layer.state_dict())  # the same (rounded) weights, in float64
    ref_out, ref_grads = run_layer(UnfoldSASA(reference), x.double(), grad.to(out.dtype).double(), False)
    row = {"errors": errors(out, grads, ref_out, ref_grads)}
    if backend != "torch":
        torch_layer = make_sasa(channels, ks, "torch", heads, pos_enc=pos_enc, stride=stride).to(device, dtype)
        torch_layer.load_state_dict(layer.state_dict())
        row["torch_errors"] = errors(*run_layer(torch_layer, x, grad, autocast), ref_out, ref_grads)
    return row


def check_model(backend: str, device: torch.device) -> dict:
    """Quarter-width attention ResNet-26 (16×16, train mode, fp32): ``backend`` vs the torch backend."""
    options = {"backbone": "attention", "small_input": True, "width": 0.25, "heads": 4, "in_channels": 3}
    torch.manual_seed(0)
    tested = {} if backend == "auto" else {"backend": backend}
    model = create_model("resnet26", 10, **tested, **options).to(device)
    reference = create_model("resnet26", 10, backend="torch", **options).to(device, torch.float64)
    reference.load_state_dict(model.state_dict())
    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(8, 3, 16, 16, device=device, generator=gen)
    grad = torch.randn(8, 10, device=device, generator=gen)
    out, grads = run_layer(model, x, grad, False)
    ref_out, ref_grads = run_layer(reference, x.double(), grad.double(), False)
    errs = errors(out, grads, ref_out, ref_grads)
    worst = max((k for k in errs if k not in ("out", "x")), key=lambda k: math.inf if math.isnan(errs[k]) else errs[k])
    return {"errors": {"out": errs["out"], "x": errs["x"], worst: errs[worst]}}


def fmt(errs: dict[str, float] | None) -> tuple[str, str, str]:
    """(output error, input-gradient error, worst parameter-gradient error with its name)."""
    if errs is None:
        return "–", "–", "–"
    params = {k: v for k, v in errs.items() if k not in ("out", "x")}
    name = max(params, key=lambda k: math.inf if math.isnan(params[k]) else params[k])
    return f"{errs['out']:.1e}", f"{errs['x']:.1e}", f"{params[name]:.1e} ({name})"


def verdict(errs: dict[str, float], tolerance: float) -> bool:
    return all(v <= tolerance for v in errs.values())  # NaN compares False: a missing/non-finite value fails


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (dry run)")
    parser.add_argument("--backend", default="triton", help="backend under test: triton (default), torch, auto")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help=f"subset of {', '.join(PRECISIONS)}")
    parser.add_argument("--cases", default=None, help=f"layer cases to run, e.g. 1-3,9 (default: all {len(CASES)})")
    parser.add_argument("--no-model", action="store_true", help="skip the ResNet-26 check")
    parser.add_argument("--budget-s", type=float, default=None, help="start no new case after this many seconds")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    args = parser.parse_args(argv)
    try:
        device = check_device(args.device)
        parse_list(args.backend, ("triton", "torch", "auto"), "--backend")
        precisions = parse_list(args.precisions, PRECISIONS, "--precisions")
        cases = [CASES[i] for i in parse_cases(args.cases)]
    except ValueError as exc:
        parser.error(str(exc))
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here (torch's default lets cuDNN use TF32)
    torch.backends.cuda.matmul.allow_tf32 = False
    budget = Budget(args.budget_s)
    head = "| case (B, C, heads, H×W, k, pos_enc, stride) | precision | output | grad x | worst param grad "
    head += "| torch backend: output | grad x | worst param grad | tolerance | result |"
    lines = [head, "|" + "---|" * 10]
    failed = not_run = 0
    todo = [(case, p) for case in cases for p in precisions]
    if not args.no_model:  # right after the first case's checks, so that a short budget still reaches it
        todo.insert(min(len(precisions), len(todo)), ("resnet26", "fp32"))
    for case, precision in todo:
        name = case if isinstance(case, str) else "{}, {}, {}, {}×{}, {}, {}, {}".format(*case)
        if budget.spent():
            lines.append(f"| {name} | {precision} | not run (time budget) |" + " |" * 7)
            not_run += 1
            continue
        print(f"{stamp()} {name} {precision}", flush=True)
        try:
            row = (
                check_model(args.backend, device)
                if case == "resnet26"
                else check_case(case, precision, args.backend, device)
            )
            ok = verdict(row["errors"], TOLERANCE[precision])
            cells = [*fmt(row["errors"]), *fmt(row.get("torch_errors")), f"{TOLERANCE[precision]:.0e}"]
            cells.append("pass" if ok else "FAIL")
        except Exception as exc:  # a crash is a failure of this case; the others still run
            print(traceback.format_exc(), flush=True)
            ok, cells = False, ["error", "–", "–", "–", "–", "–", f"{TOLERANCE[precision]:.0e}"]
            cells.append(f"FAIL ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})")
        failed += not ok
        lines.append(f"| {name} | {precision} | " + " | ".join(cells) + " |")
        print("   " + lines[-1], flush=True)
    run = len(todo) - not_run
    summary = f"**{'FAIL' if failed else 'PASS'}**: {run - failed}/{run} checks passed"
    summary += f", {not_run} not run (time budget)" if not_run else ""
    text = (
        f"# SASA2d backend {args.backend!r} vs float64 reference ({device.type})\n\n{summary}. "
        f"{machine(device)}; took {budget.elapsed():.0f} s.\n\n{(__doc__ or '').split(chr(10) + chr(10))[1]}\n\n"
        + "\n".join(lines)
        + "\n"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(f"\n{summary}", flush=True)
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
