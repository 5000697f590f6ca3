"""The whole quick start, timed: ``python -m benchmarks.quickstart [--study YAML] [--old ROOT] [--workers 1,2]
[--set K=V ...]``.

Runs ``python -m platform.study studies/window_size.yaml`` (or ``--study``: another study file, read from each
checkout, e.g. ``studies/search.yaml`` with and without its confirmation round) exactly as a user does, on a fresh
runs folder each
time, for every combination of code checkout (this one, and ``--old ROOT``: another checkout, e.g.
``git worktree add /tmp/old c0589b1``, run from its own root with the same interpreter) and ``--workers`` value
(``default``: no ``--workers`` option, whatever the study file says). ``--set`` shortens it (e.g.
``--set train.epochs=1 --set 'search.seeds=[0, 1]'``). The runs take turns in the order given by ``--order``.

Reported per run, from the study's own Optuna storage: the command's wall time, the trials completed, the mean
and median ``Trainer.fit`` time per trial, the worker count and threads per worker the study used, and each design
point's mean objective value (so a change in the numbers, e.g. from another thread count, is visible). Results
go to ``benchmarks/results/quickstart.md`` (``--out``) with the command that wrote them, the machine, the date and
the load average before and after each run (other processes on the machine inflate absolute times; compare runs of
one table).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "quickstart.md"
STUDY = "studies/window_size.yaml"


def study_name(root: Path, study: str) -> str:
    """The study's ``name:`` in ``root``'s copy of the file (the Optuna study the command creates)."""
    import yaml

    return str(yaml.safe_load((root / study).read_text())["name"])


def git_commit(root: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                           text=True).stdout.strip()
    return (done.stdout.strip() or "?") + ("-dirty" if dirty else "")


def run_once(root: Path, workers: str, sets: list[str], study_file: str = STUDY) -> dict:
    """One quick start from ``root`` on a fresh runs folder; its wall time and what its storage says."""
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "platform.study", study_file, "--runs-dir", f"{tmp}/runs"]
        if workers != "default":
            command += ["--workers", workers]
        for item in sets:
            command += ["--set", item]
        env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(root)}
        env.pop("MLFLOW_TRACKING_URI", None)
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} (in {root}) failed with {done.returncode}:\n{done.stderr[-3000:]}")
        study = optuna.load_study(study_name=study_name(root, study_file), storage=f"sqlite:///{tmp}/runs/optuna.db")
        trials = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    fits = [t.user_attrs["fit_seconds"] for t in trials if "fit_seconds" in t.user_attrs]
    workers_seen = {t.user_attrs.get("worker") for t in trials}
    threads = {t.user_attrs.get("numerics", {}).get("threads") for t in trials} - {None}
    by_point: dict[str, list[float]] = defaultdict(list)
    for t in trials:
        by_point[t.user_attrs.get("design_point", "?")].append(t.value)
    return {
        "root": root, "commit": git_commit(root), "workers": workers, "wall": wall, "trials": len(trials),
        "fit_mean": statistics.fmean(fits) if fits else float("nan"),
        "fit_median": statistics.median(fits) if fits else float("nan"),
        "processes": len(workers_seen), "threads": ",".join(map(str, sorted(threads))) or "not recorded",
        "points": {k: (statistics.fmean(v), len(v)) for k, v in sorted(by_point.items())},
        "load": (load_before, load_after),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=STUDY, help=f"the study file, relative to each checkout (default {STUDY})")
    parser.add_argument("--old", type=Path, help="another checkout to time side by side (run from its own root)")
    parser.add_argument("--workers", default="default", help="comma-separated --workers values; 'default' = none")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--order", choices=("alternate", "grouped"), default="alternate",
                        help="alternate: new, old, new, old …; grouped: all new runs, then all old")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    roots = [("this checkout", REPO)] + ([("old", args.old.resolve())] if args.old else [])
    if not (REPO / args.study).is_file():
        parser.error(f"--study: no {args.study} in {REPO}")
    if args.old and not (args.old / args.study).is_file():
        parser.error(f"--old: {args.old} holds no {args.study}")
    combos = [(label, root, w) for w in args.workers.split(",") for label, root in roots]
    if args.order == "grouped":
        combos.sort(key=lambda c: c[0] != "this checkout")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for label, root, workers in combos:
        print(f"{time.strftime('%H:%M:%S')} {label} ({root}) --workers {workers}", flush=True)
        rows.append({"label": label, **run_once(root, workers, args.sets, args.study)})
        print(f"  {rows[-1]['wall']:.0f} s, {rows[-1]['trials']} trials", flush=True)
    from benchmarks.timing import cpu_name

    command = "python -m benchmarks.quickstart " + shlex.join(sys.argv[1:] if argv is None else argv)
    shortened = f" with `{shlex.join(x for item in args.sets for x in ('--set', item))}`" if args.sets else ""
    lines = [
        "# The whole quick start (python -m benchmarks.quickstart)" if args.study == STUDY
        else f"# `{args.study}`, the whole study timed (python -m benchmarks.quickstart)",
        "",
        f"`{command.strip()}`, started {started}; {cpu_name()}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}. Each row is `python -m platform.study {args.study}` on a fresh runs folder"
        + shortened + ", the rows in the order run.",
        "",
        "| code | --workers | processes × threads | command (s) | command (min) | trials | fit per trial, mean (s) "
        "| fit per trial, median (s) | load before → after |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} ({r['commit']}) | {r['workers']} | {r['processes']} × {r['threads']} | "
                     f"{r['wall']:.0f} | {r['wall'] / 60:.1f} | {r['trials']} | {r['fit_mean']:.1f} | "
                     f"{r['fit_median']:.1f} | {r['load'][0]:.1f} → {r['load'][1]:.1f} |")
    lines += ["", "Mean objective (val/acc) per design point and run (trials in brackets):", ""]
    points = sorted({p for r in rows for p in r["points"]})
    lines.append("| design point | " + " | ".join(f"{r['label']}, --workers {r['workers']}" for r in rows) + " |")
    lines.append("|---|" + "---:|" * len(rows))
    for p in points:
        cells = [f"{r['points'][p][0]:.4f} ({r['points'][p][1]})" if p in r["points"] else "–" for r in rows]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
