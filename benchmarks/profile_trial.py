"""Where a quick-start trial's time goes: ``python -m benchmarks.profile_trial [--threads N] [--window-size K]``.

Runs one real trial of ``studies/window_size.yaml`` (digits 16×16, quarter-width attention ResNet-26, the study's
epochs and batch) through the platform's own pieces — the spec, ``build_model``, the data module and
``train_trial`` (Lightning) — without Optuna or MLflow, and reports two things:

- a wall-clock split of ``Trainer.fit`` from Lightning hooks: data wait (end of one training step to the start of
  the next), forward + loss (``training_step``), backward, optimizer step (the rest of the step: step, zero-grad,
  the scheduler and the per-step logging), validation, and what is left (Lightning's loop, epoch ends,
  checkpointing, the progress bar being off);
- the torch profiler over ``--profile-steps`` training steps of the last epoch, its self CPU time grouped by what
  the op belongs to: the SASA window op (forward, backward), the SASA small-map (dense) path, convolutions,
  batch norm, the optimizer, and the rest (activations, pooling, adds, loss).

Results go to ``benchmarks/results/profile_trial.md`` (``--out``) with the command that wrote them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.timing import machine
from platform.data.datamodule import build_datamodule
from platform.search import build_model, grid_points, resolve
from platform.spec.study_spec import load_spec
from platform.training.trainer import train_trial

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "window_size.yaml"
RESULTS = REPO / "benchmarks" / "results" / "profile_trial.md"

# Op name -> group, first match wins (substring of the profiler's event name).
GROUPS: tuple[tuple[str, str], ...] = (
    ("sasa::window_attention_torch_backward", "SASA window op, backward"),
    ("sasa::window_attention_torch", "SASA window op, forward"),
    ("sasa::window_attention_triton", "SASA window op (triton)"),
    ("Optimizer.", "optimizer step's own Python time (see op_groups)"),
    ("convolution", "convolutions (incl. SASA's 1×1 projections)"),
    ("batch_norm", "batch norm"),
)
# Ops of the dense small-map path (bmm / softmax / gather / cat appear nowhere else in a ResNet-26).
DENSE_OPS = ("aten::bmm", "aten::baddbmm", "softmax", "aten::gather", "aten::scatter_add", "aten::cat",
             "aten::matmul", "aten::mm")


class StepClock(pl.Callback):
    """Wall-clock split of the training loop from Lightning's hooks (seconds, summed over the fit)."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)
        self._mark: float | None = None
        self._ready: float | None = None
        self._val_start = 0.0

    def _lap(self, name: str) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.parts[name] += now - self._mark
        self._mark = now

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ready = time.perf_counter()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        now = time.perf_counter()
        if self._ready is not None:
            self.parts["data wait"] += now - self._ready
        self._mark = now

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        self._lap("forward + loss")

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._lap("backward")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           idx: int) -> None:
        self._lap("optimizer step, zero_grad, scheduler, step logging")
        self._ready = self._mark = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ready = None

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.parts["validation"] += time.perf_counter() - self._val_start


class StepProfiler(pl.Callback):
    """The torch profiler around ``steps`` training steps of the last epoch."""

    def __init__(self, steps: int) -> None:
        self.steps, self.done = steps, 0
        self.prof: profile | None = None
        self._active = False

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        last_epoch = trainer.current_epoch == trainer.max_epochs - 1
        if last_epoch and idx >= 2 and self.prof is None:
            self.prof = profile(activities=[ProfilerActivity.CPU])
            self.prof.__enter__()
            self._active = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           idx: int) -> None:
        if self._active and self.prof is not None:
            self.done += 1
            if self.done >= self.steps:
                self.prof.__exit__(None, None, None)
                self._active = False

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._active and self.prof is not None:
            self.prof.__exit__(None, None, None)
            self._active = False


def group_of(name: str) -> str:
    for pattern, group in GROUPS:
        if pattern in name:
            return group
    if any(op in name for op in DENSE_OPS):
        return "SASA small-map (dense) path and relative-logit matmuls: bmm, softmax, gather, cat"
    return "other ops (ReLU, pooling, adds, copies, loss)"


def op_groups(prof: profile) -> tuple[dict[str, float], list[tuple[str, float, int]]]:
    """Self CPU seconds per group and the top ops by self time.

    The window op's events count whole (its children belong to it); ops in other threads than the training loop's
    are the window op's worker threads (the only Python threads that run torch ops), so they count to it as well.
    Lightning runs forward and backward inside ``optimizer.step(closure)``, so the optimizer's group is the step's
    own Python time; its parameter updates (``add_``, ``mul_``) land in "other ops" (the wall-clock split above
    times the optimizer step as a whole).
    """
    groups: dict[str, float] = defaultdict(float)
    events = prof.events()
    main_thread = next((e.thread for e in events if e.name.startswith("Optimizer.step")), None)
    inside_op: set[int] = set()
    for event in events:
        if event.name.startswith("sasa::window_attention"):
            groups[group_of(event.name)] += event.cpu_time_total / 1e6
            stack = list(event.cpu_children)
            while stack:
                child = stack.pop()
                inside_op.add(id(child))
                stack.extend(child.cpu_children)
    for event in events:
        name = event.name
        if id(event) in inside_op or name.startswith("sasa::window_attention"):
            continue
        if name.startswith(("autograd::", "GeneratedBackwardFor", "ProfilerStep")):
            continue
        group = group_of(name)
        if main_thread is not None and event.thread != main_thread:
            group = "SASA window op, in its worker threads"
        groups[group] += event.self_cpu_time_total / 1e6
    top = [(e.key, e.self_cpu_time_total / 1e6, e.count) for e in prof.key_averages()]
    top.sort(key=lambda row: -row[1])
    return dict(groups), top[:15]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--window-size", type=int, default=7, help="the design point's window size (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-steps", type=int, default=8, help="training steps under the torch profiler")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = load_spec(STUDY)
    point = next(p for p in grid_points(spec) if p.params.get("window_size") == args.window_size)
    _, train_spec = resolve(spec, point)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        datamodule = build_datamodule(spec.data, batch_size=train_spec.batch_size, seed=args.seed,
                                      cache_dir=Path(tmp) / "data")
        datamodule.setup("fit")
        info = datamodule.dataset_info()
        pl.seed_everything(args.seed, workers=True, verbose=False)
        net = build_model(spec, point, num_classes=info["num_classes"], in_channels=info["channels"])
        clock, profiler = StepClock(), StepProfiler(args.profile_steps)
        outcome, _ = train_trial(net, datamodule, train=train_spec, monitor=spec.objective.metric, mode="max",
                                 seed=args.seed, work_dir=Path(tmp) / "trial", callbacks=[clock, profiler],
                                 accelerator="cpu", progress_bar=False)
    load_after = os.getloadavg()
    fit = outcome.fit_seconds
    parts = dict(clock.parts)
    parts["Lightning loop, epoch ends, checkpointing (the rest of fit)"] = fit - sum(parts.values())
    assert profiler.prof is not None, "the profiler never ran (fewer than 3 training steps per epoch?)"
    groups, top = op_groups(profiler.prof)
    profiled = sum(groups.values())
    command = "python -m benchmarks.profile_trial " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# Where a quick-start trial's time goes (python -m benchmarks.profile_trial)",
        "",
        f"`{command.strip()}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine(torch.device('cpu'))}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (other jobs shared the cores). "
        f"One trial of studies/window_size.yaml at window_size={args.window_size}, seed {args.seed}: "
        f"{outcome.epochs_run} epochs, batch {train_spec.batch_size}, {outcome.throughput:.0f} training "
        f"images/s, fit {fit:.1f} s, test {outcome.test_seconds:.2f} s.",
        "",
        "## Wall clock of `Trainer.fit` (Lightning hooks)",
        "",
        "| part | seconds | share of fit |",
        "|---|---:|---:|",
        *[f"| {name} | {sec:.2f} | {sec / fit:.1%} |" for name, sec in sorted(parts.items(), key=lambda kv: -kv[1])],
        f"| whole fit | {fit:.2f} | 100% |",
        "",
        f"## Torch profiler: {profiler.done} training steps of the last epoch, self CPU time by group",
        "",
        "Self CPU time summed over threads (the SASA window op's worker threads included), so shares are of CPU "
        "work, not of wall time.",
        "",
        "| group | CPU ms per step | share |",
        "|---|---:|---:|",
        *[f"| {name} | {1e3 * sec / max(1, profiler.done):.1f} | {sec / profiled:.1%} |"
          for name, sec in sorted(groups.items(), key=lambda kv: -kv[1])],
        "",
        "Top ops by self CPU time (all profiled steps):",
        "",
        "| op | self CPU ms | calls |",
        "|---|---:|---:|",
        *[f"| `{name}` | {1e3 * sec:.1f} | {count} |" for name, sec, count in top],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
