"""How much of a trial is not training? ``python -m benchmarks.study_overhead [--epochs N] [--trials N]``.

Runs a real study through the CLI (digits, a quarter-width conv ResNet-26, a budget sized for a trial of about
30 s on a 2-core CPU) in a temporary folder, then reads each trial's timings from the Optuna storage:

- ``fit``: inside ``Trainer.fit`` (training + validation epochs), the work the user asked for;
- ``test``: evaluating the best checkpoint on the test split;
- ``overhead``: everything else inside the trial — model build and FLOP count, MLflow child run, params and
  metrics, checkpoint handling, logging the model with its signature.

Per-study costs (interpreter start, imports, opening stores, data preparation, the summary) are reported
separately: they are paid once per command, not per trial. Results go to ``benchmarks/results/study_overhead.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "study_overhead.md"


def _spec(epochs: int, trials: int) -> dict:
    return {
        "name": "overhead",
        "data": {"source": "digits", "image_size": 16},
        "model": {"name": "resnet26", "backbone": "conv", "small_input": True, "width": 0.25},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "warmup_epochs": 1},
        "search": {"design": "grid", "parameters": {}, "seeds": list(range(trials))},
        "objective": {"metric": "val/acc"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs per trial (12 ≈ 30 s on a 2-core CPU)")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "overhead.yaml"
        spec_path.write_text(yaml.safe_dump(_spec(args.epochs, args.trials)))
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "platform.study", str(spec_path), "--runs-dir", f"{tmp}/runs"],
            cwd=REPO, check=True, env={**os.environ, "TQDM_DISABLE": "1"},
        )
        wall = time.perf_counter() - start
        study = optuna.load_study(study_name="overhead", storage=f"sqlite:///{tmp}/runs/optuna.db")
        trials = [t.user_attrs for t in study.get_trials()]
    rows = []
    for attrs in trials:
        total, fit, test = attrs["trial_seconds"], attrs["fit_seconds"], attrs["test_seconds"]
        rows.append((total, fit, test, total - fit - test))
    total = statistics.fmean(r[0] for r in rows)
    fit = statistics.fmean(r[1] for r in rows)
    test = statistics.fmean(r[2] for r in rows)
    overhead = statistics.fmean(r[3] for r in rows)
    per_study = wall - sum(r[0] for r in rows)
    lines = [
        "# Study overhead (python -m benchmarks.study_overhead)",
        "",
        f"{len(rows)} trials of a quarter-width conv ResNet-26 on digits 16×16, {args.epochs} epochs each, "
        f"2-core CPU, measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| per trial (mean) | seconds | share of trial |",
        "|---|---:|---:|",
        f"| training (`Trainer.fit`) | {fit:.2f} | {fit / total:.1%} |",
        f"| test of best checkpoint | {test:.2f} | {test / total:.1%} |",
        f"| overhead (set-up, tracking, model logging) | {overhead:.2f} | {overhead / total:.1%} |",
        f"| whole trial | {total:.2f} | 100% |",
        "",
        f"Per command, paid once (start-up, imports, stores, data, summary): {per_study:.1f} s "
        f"(whole command {wall:.1f} s).",
        "",
        f"Target: overhead ≤ 5% of a 30-second trial → measured {overhead / total:.1%} of a {total:.0f}-second trial.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
