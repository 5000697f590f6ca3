"""Where one SASA2d forward + backward spends its GPU time: ``python -m benchmarks.profile_layer [--out FILE]``.

Runs torch.profiler over a few forward + backward passes of ``SASA2d(C, C, k, heads=8)`` (bf16, batch 64,
relative positions; default C=128, 32×32, k=7) on CUDA and prints the kernels by total device time. It also times,
side by side in one process, the layer as it is against the same layer computing its relative-position logits with
the per-head einsum used before 2026-11-27 (``bhcyx,khc->bhkyx``, batched over heads only): that einsum's backward
reduces over B·H·W pixels in a handful of GPU blocks, which this comparison measures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.timing import device_ms, machine
from sasa import SASA2d


class _EinsumBiasSASA2d(SASA2d):
    """SASA2d with the previous einsum formulation of the relative logits (for the comparison only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from sasa.kernels import window_attention

        B, _, H, W = x.shape
        heads, d = self.heads, self.head_dim
        q = self.query(x).reshape(B * heads, d, H, W)
        k = self.key(x).reshape(B * heads, d, H, W)
        v = self.value(x).reshape(B * heads, d, H, W)
        q5, d_row = q.view(B, heads, d, H, W), d // 2
        row = torch.einsum("bhcyx,khc->bhkyx", q5[:, :, :d_row], self.rel_rows).flatten(0, 1)
        col = torch.einsum("bhcyx,khc->bhkyx", q5[:, :, d_row:], self.rel_cols).flatten(0, 1)
        y = window_attention(q, k, v, self.kernel_size, row, col, self.backend)
        return self.pool(y.view(B, self.out_channels, H, W))


def _step(module: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    module(x).backward(grad)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--kernel-size", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu for a dry run)")
    device, dtype = torch.device(args.device), torch.bfloat16
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (args.batch, args.channels, args.size, args.size)
    x = torch.randn(shape, device=device, dtype=dtype, generator=gen, requires_grad=True)
    grad = torch.randn(shape, device=device, dtype=dtype, generator=gen)
    layers = {}
    for name, cls in (("SASA2d", SASA2d), ("SASA2d, einsum relative logits (before)", _EinsumBiasSASA2d)):
        torch.manual_seed(0)
        layers[name] = cls(args.channels, args.channels, args.kernel_size, heads=8, backend=args.backend)
        layers[name].to(device=device, dtype=dtype)
    lines = [
        f"# SASA2d forward + backward on {machine(device)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"bf16, batch {args.batch}, C={args.channels}, {args.size}×{args.size}, k={args.kernel_size}, 8 heads, "
        f"relative positions, backend {args.backend!r}; CUDA-event times, median of 20 after 3 warm-ups.",
        "",
        "| layer | fwd + bwd ms |",
        "|---|---|",
    ]
    for name, layer in layers.items():
        ms = device_ms(lambda layer=layer: _step(layer, x, grad), device, warmup=3, reps=20, cap_s=5.0)
        lines.append(f"| {name} | {ms['ms']:.3f} |")
    layer = layers["SASA2d"]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(5):
            _step(layer, x, grad)
        if device.type == "cuda":
            torch.cuda.synchronize()
    sort_by = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort_by, row_limit=15, max_name_column_width=60)
    lines += ["", "Kernels of 5 forward + backward passes of SASA2d, by total device time:", "", "```", table, "```"]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
