"""Does a study go faster with more workers? ``python -m benchmarks.scaling [--workers 1 2] [--seeds 3]``.

Runs the same tiny study (digits 8×8, quarter-width SASA ResNet-26, a few batches per epoch) once per worker
count, each in fresh temporary stores, one after the other in this one invocation, and reads the trial times
back from the Optuna storage:

- ``trials/h``: trials completed per hour of the whole command (interpreter start to exit), and per hour of the
  busy span (first trial start to last trial end), which leaves out the once-per-command start-up;
- ``trial``: mean trial wall time (Optuna's ``datetime_start`` → ``datetime_complete``), split into training
  (``fit_seconds``), testing (``test_seconds``) and the rest (model build, FLOPs, MLflow runs and model logging);
- ``gap``: mean time between one trial's end and the next trial's start on the same worker (asking the storage
  for the next trial, housekeeping, garbage collection): the scheduling overhead per trial;
- ``start-up`` / ``wind-down``: command start → first trial, last trial → command exit.

Results go to ``benchmarks/results/scaling.md`` (and are printed). On a machine with few cores the workers share
them (each gets ``cores // N`` torch threads), so speed-up here measures overlap of the single-threaded parts of
a trial (Python, logging, I/O); with one GPU per worker, training itself runs in parallel (see the README).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import optuna
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "scaling.md"
NAME = "scaling"


def _spec(seeds: int, epochs: int, batches: int) -> dict:
    return {
        "name": NAME,
        "data": {"source": "digits", "image_size": 8},
        "model": {"name": "resnet26", "backbone": "attention", "small_input": True, "width": 0.25, "heads": 2},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "warmup_epochs": 0,
                  "limit_train_batches": batches, "limit_val_batches": 2},
        "search": {"design": "grid", "parameters": {"window_size": [3, 5]}, "seeds": list(range(seeds))},
        "objective": {"metric": "val/acc"},
    }


@dataclass
class Measurement:
    workers: int
    trials: int
    wall_s: float
    busy_s: float
    trial_s: float
    fit_s: float
    test_s: float
    gap_s: float
    startup_s: float
    winddown_s: float

    @property
    def per_hour(self) -> float:
        return self.trials / self.wall_s * 3600

    @property
    def per_hour_busy(self) -> float:
        return self.trials / self.busy_s * 3600


def measure(workers: int, seeds: int, epochs: int, batches: int) -> Measurement:
    """Run the study with ``workers`` workers in fresh stores and read its timings back."""
    with tempfile.TemporaryDirectory(prefix="sasa-scaling-") as tmp:
        spec_path = Path(tmp) / f"{NAME}.yaml"
        spec_path.write_text(yaml.safe_dump(_spec(seeds, epochs, batches)))
        cmd = [sys.executable, "-m", "platform.study", str(spec_path), "--runs-dir", f"{tmp}/runs",
               "--workers", str(workers)]
        began = datetime.now()  # Optuna's trial datetimes are naive local times too
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                                env={**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"study with {workers} workers failed ({result.returncode}):\n{result.stdout[-3000:]}"
                             f"\n{result.stderr[-3000:]}")
        ended = datetime.now()
        study = optuna.load_study(study_name=NAME, storage=f"sqlite:///{tmp}/runs/optuna.db")
        trials = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    by_worker: dict[str, list] = defaultdict(list)
    for trial in trials:
        by_worker[trial.user_attrs["worker"]].append(trial)
    gaps = []
    for own in by_worker.values():
        own.sort(key=lambda t: t.datetime_start)
        gaps += [(b.datetime_start - a.datetime_complete).total_seconds() for a, b in pairwise(own)]
    return Measurement(
        workers=workers,
        trials=len(trials),
        wall_s=wall,
        busy_s=(last - first).total_seconds(),
        trial_s=statistics.mean((t.datetime_complete - t.datetime_start).total_seconds() for t in trials),
        fit_s=statistics.mean(t.user_attrs["fit_seconds"] for t in trials),
        test_s=statistics.mean(t.user_attrs["test_seconds"] for t in trials),
        gap_s=statistics.mean(gaps) if gaps else 0.0,
        startup_s=(first - began).total_seconds(),
        winddown_s=(ended - last).total_seconds(),
    )


def render(rows: list[Measurement], args: argparse.Namespace, load: tuple[float, float, float]) -> str:
    base = rows[0]
    lines = [
        "# Scaling: trials per hour against worker processes",
        "",
        f"`python -m benchmarks.scaling` on {os.cpu_count()} CPU cores ({os.uname().machine}), no GPU, "
        f"{datetime.now():%Y-%m-%d %H:%M}; load average before the runs: {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}. Study: 2 window sizes × {args.seeds} seeds = {2 * args.seeds} trials of {args.epochs} "
        f"epoch(s) (digits 8×8, quarter-width SASA ResNet-26, {args.batches} train + 2 val batches of 32 per "
        "epoch), default SQLite stores, fresh for each row.",
        "",
        "| workers | trials | command (s) | trials/h | speed-up | efficiency | busy span (s) | trials/h (busy) "
        "| trial (s) | fit (s) | test (s) | rest of trial (s) | gap between trials (s) | start-up (s) "
        "| wind-down (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        speedup = row.per_hour / base.per_hour
        lines.append(
            f"| {row.workers} | {row.trials} | {row.wall_s:.0f} | {row.per_hour:.0f} | {speedup:.2f}× "
            f"| {speedup / (row.workers / base.workers):.0%} | {row.busy_s:.0f} | {row.per_hour_busy:.0f} "
            f"| {row.trial_s:.1f} | {row.fit_s:.1f} | {row.test_s:.1f} | {row.trial_s - row.fit_s - row.test_s:.1f} "
            f"| {row.gap_s:.2f} | {row.startup_s:.1f} | {row.winddown_s:.1f} |"
        )
    lines += [
        "",
        "*trials/h* counts the whole command; *busy span* runs from the first trial's start to the last trial's "
        "end (start-up excluded). *rest of trial* is the trial's wall time minus training and testing: model "
        "build, FLOP count, MLflow child run, params/metrics and logging the model. *gap* is the scheduling "
        "overhead per trial: end of one trial → start of the next on the same worker. With more workers than "
        "cores each trial gets slower (the cores are shared, `torch.set_num_threads(cores // N)`); the speed-up "
        "comes from overlapping the single-threaded parts. With one GPU per worker the trials do not share a "
        "device, and throughput grows nearly linearly until data loading or the storage saturates.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per design point (2 design points)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=16, help="training batches per epoch")
    args = parser.parse_args(argv)
    if min(*args.workers, args.seeds, args.epochs, args.batches) < 1:
        parser.error(f"--workers, --seeds, --epochs and --batches must be ≥ 1; got {args.workers}, {args.seeds}, "
                     f"{args.epochs}, {args.batches}")
    load = os.getloadavg()
    rows = []
    for workers in args.workers:
        print(f"running the study with {workers} worker(s)...", flush=True)
        rows.append(measure(workers, args.seeds, args.epochs, args.batches))
    text = render(rows, args, load)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
