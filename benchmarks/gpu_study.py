"""GPU study check: a real study with the GPU recipe and the Triton backend, end to end, measured.

    python -m benchmarks.gpu_study --out OUT [--device cuda|cpu] [--budget-s 240]

Run by ``benchmarks/gpu_study_check.sh`` (itself called by ``benchmarks/gpu_check.sh`` after the kernel checks).
Steps:

1. Data: the digits (``benchmarks.digits_folder``) written as a local image folder of 32×32 greyscale PNGs.
2. Phases, each a fresh study composed of ``studies/window_size.yaml`` + ``recipes/cifar10-gpu.yaml`` (bf16-mixed,
   full-width ResNet-26) + an overlay (the local folder, ``model.backend: triton``, 1 short epoch, 2 windows × 2
   seeds): stream mode with 1 worker, stream mode with 2 workers, memory mode with 2 workers. "2 workers on one
   GPU" are two study commands on the same stores (the cluster pattern: one starts, the second joins once the
   study exists; the plan of one command gives each GPU one worker).
3. Per phase: every trial COMPLETE; each trial's MLflow run records ``model.backend``, ``train.precision`` and
   ``train.compile`` as asked; GPU utilisation sampled by ``nvidia-smi`` every 0.5 s while it runs; the mean
   data-wait share of the training loop (trial attribute ``data_wait_fraction``); trials per hour over the phase.
4. The first phase's champion is promoted (``python -m platform.promote``) with the GPU hidden
   (``CUDA_VISIBLE_DEVICES=""``, no ``TRITON_INTERPRET``): its verification re-evaluates the model on the CPU with
   the torch backend and must pass; then the registered model is reloaded in a fresh CPU process and run there.

Writes ``OUT/gpu_study.md`` (commit as ``benchmarks/results/gpu_study.md``) and ``OUT/gpu_study.json``; exit status 0
only if every check passed. ``--device cpu`` is the dry run of the same logic on a machine without a GPU: Triton
under its interpreter (``TRITON_INTERPRET=1``), 8×8 images, one attention layer, two trials per phase, no
``nvidia-smi``. Nothing is timed for a claim there; it exercises the script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.digits_folder import write_digits_folder
from benchmarks.timing import gpu_name, stamp

REPO = Path(__file__).resolve().parents[1]
BASE = ["studies/window_size.yaml", "recipes/cifar10-gpu.yaml"]
PHASES = [("stream", 1), ("stream", 2), ("memory", 2)]  # (data mode, workers)
COMPILE: bool | str = False  # train.compile of the studies (a mode would pay a compile in every trial process)


def overlay(digits: Path, mode: str, dry: bool) -> dict[str, Any]:
    """The overlay of one phase: a recipe merged over the study and the GPU recipe (it holds no ``name``: only the
    first file may; the phase's study is named with ``--set name=…``, :func:`name_override`)."""
    spec: dict[str, Any] = {
        "data": {"source": "local", "path": str(digits), "image_column": "image", "test_split": None,
                 "image_size": 32, "grayscale": True, "mode": mode},
        "model": {"backend": "triton"},
        "train": {"epochs": 1, "limit_train_batches": 20, "limit_val_batches": 4, "compile": COMPILE},
        "search": {"parameters": {"window_size": [3, 7]}, "seeds": [0, 1], "effect": None, "reference": None},
        "execution": {"accelerator": "gpu", "devices": "auto", "data_workers": 2 if mode == "stream" else 0},
    }
    if dry:  # the interpreter runs ~6 s per SASA layer step: one attention layer, tiny images, two trials
        spec["data"]["image_size"] = 8
        spec["model"].update({"backbone": None, "stem": "conv", "attention_groups": [4], "width": 0.25, "heads": 2})
        spec["train"].update({"batch_size": 8, "limit_train_batches": 2, "limit_val_batches": 1})
        spec["search"]["parameters"] = {"window_size": [3]}
        spec["execution"].update({"accelerator": "cpu", "devices": "auto"})
    return spec


def study_env(dry: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("SASA_BACKEND", None)
    if dry:
        env["TRITON_INTERPRET"] = "1"
    return env


def cpu_env() -> dict[str, str]:
    """A process that sees no GPU and no Triton interpreter: the torch backend on the CPU."""
    env = {k: v for k, v in study_env(False).items() if k not in ("TRITON_INTERPRET",)}
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


class GpuSampler:
    """``nvidia-smi`` utilisation samples every 0.5 s into a CSV while a phase runs (nothing without nvidia-smi)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> GpuSampler:
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                 "-lms", "500"], stdout=self.path.open("w"), stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def summary(self) -> dict[str, float | None]:
        util, mem = [], []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and all(p.replace(".", "", 1).isdigit() for p in parts):
                    util.append(float(parts[0]))
                    mem.append(float(parts[1]))
        return {"gpu_util_mean": statistics.fmean(util) if util else None,
                "gpu_util_median": statistics.median(util) if util else None,
                "gpu_mem_max_mib": max(mem) if mem else None, "gpu_samples": len(util)}


def name_override(name: str) -> list[str]:
    return ["--set", f"name={name}"]


def study_cmd(spec_files: list[str], runs: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "platform.study", *spec_files, *name_override(name), "--runs-dir", str(runs),
            "--workers", "1"]


def wait_for_study(runs: Path, name: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until the first command has created study ``name`` and enqueued its design (or has ended)."""
    import optuna  # late: heavy

    deadline = time.monotonic() + timeout
    storage = f"sqlite:///{runs / 'optuna.db'}"
    while time.monotonic() < deadline and proc.poll() is None:
        if (runs / "optuna.db").exists():
            try:
                if optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
                    return
            except Exception:  # not created yet (KeyError), or the database is being set up
                pass
        time.sleep(0.5)


def run_phase(work: Path, digits: Path, mode: str, workers: int, dry: bool, out: Path) -> dict[str, Any]:
    tag = f"{mode}-w{workers}"
    runs = work / f"runs-{tag}"
    overlay_file = work / f"overlay-{tag}.yaml"
    overlay_file.write_text(yaml.safe_dump(overlay(digits, mode, dry), sort_keys=False))
    files = [*BASE, str(overlay_file)]
    given = f"gpucheck-{tag}"
    printed = subprocess.run([sys.executable, "-m", "platform.study", *files, *name_override(given), "--print-spec"],
                             cwd=REPO,
                             env=study_env(dry), capture_output=True, text=True, check=True)
    name = yaml.safe_load(printed.stdout)["name"]
    print(f"[{stamp()}] phase {tag}: study {name}, {workers} worker(s)", flush=True)
    logs = [(work / f"{tag}-cmd{i}.log").open("w") for i in range(workers)]
    with GpuSampler(work / f"{tag}-gpu.csv") as sampler:
        start = time.perf_counter()
        procs = [subprocess.Popen(study_cmd(files, runs, given), cwd=REPO, env=study_env(dry), stdout=logs[0],
                                  stderr=subprocess.STDOUT)]
        if workers > 1:
            wait_for_study(runs, name, procs[0])
            procs += [subprocess.Popen(study_cmd(files, runs, given), cwd=REPO, env=study_env(dry), stdout=logs[i],
                                       stderr=subprocess.STDOUT) for i in range(1, workers)]
        codes = [p.wait() for p in procs]
        seconds = time.perf_counter() - start
    row = {"phase": tag, "mode": mode, "workers": workers, "study": name, "runs": str(runs), "exit_codes": codes,
           "seconds": seconds, **sampler.summary(), **inspect_study(runs, name)}
    row["trials_per_hour"] = 3600 * row["complete"] / seconds if seconds > 0 else None
    row["ok"] = codes == [0] * workers and row["all_complete"] and row["recorded_ok"]
    print(f"[{stamp()}] phase {tag}: {json.dumps({k: v for k, v in row.items() if k != 'problems'})}", flush=True)
    for problem in row["problems"]:
        print(f"  problem: {problem}", flush=True)
    return row


def inspect_study(runs: Path, name: str) -> dict[str, Any]:
    """Trial states, what MLflow recorded per trial, and the mean data-wait share."""
    import optuna  # late: heavy
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{runs / 'optuna.db'}").get_trials()
    client = MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")
    want = {"model.backend": "triton", "train.precision": "bf16-mixed", "train.compile": str(COMPILE)}
    problems, waits = [], []
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            problems.append(f"trial #{trial.number} is {trial.state.name}: {trial.user_attrs.get('fail_reason', '')}")
            continue
        waits.append(float(trial.user_attrs.get("data_wait_fraction", float("nan"))))
        params = client.get_run(trial.user_attrs["mlflow_run_id"]).data.params
        for key, value in want.items():
            if params.get(key) != value:
                problems.append(f"trial #{trial.number}: MLflow param {key}={params.get(key)!r}, expected {value!r}")
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    return {"trials": len(trials), "complete": complete, "all_complete": bool(trials) and complete == len(trials),
            "recorded_ok": not any("MLflow param" in p for p in problems),
            "data_wait_mean": statistics.fmean(waits) if waits else None, "problems": problems}


def promote_and_reload(row: dict[str, Any], work: Path) -> dict[str, Any]:
    """Promote the phase's champion with no GPU visible (verification on the CPU, torch backend), then reload."""
    runs, name = row["runs"], row["study"]
    done = subprocess.run([sys.executable, "-m", "platform.promote", name, "--runs-dir", runs], cwd=REPO,
                          env=cpu_env(), capture_output=True, text=True, timeout=600)
    (work / "promote.log").write_text(done.stdout + done.stderr)
    verified = done.returncode == 0 and "verification passed" in done.stdout
    line = next((ln for ln in done.stdout.splitlines() if "verification passed" in ln), done.stderr.strip()[-300:])
    code = (
        "import mlflow, mlflow.pytorch, torch, sasa\n"
        f"mlflow.set_tracking_uri('sqlite:///{Path(runs) / 'mlflow.db'}')\n"
        f"model = mlflow.pytorch.load_model('models:/sasa-{name}@champion', map_location='cpu')\n"
        "backends = sorted({m.backend for m in model.modules() if isinstance(m, sasa.SASA2d)})\n"
        "sasa.set_backend(model, 'torch')\n"
        "with torch.no_grad():\n"
        "    logits = model(torch.rand(3, 1, 32, 32))  # greyscale digits, values in [0, 1]\n"
        "print(backends, tuple(logits.shape), bool(torch.isfinite(logits).all()))\n"
    )
    reload = subprocess.run([sys.executable, "-c", code], cwd=work, env=cpu_env(), capture_output=True, text=True,
                            timeout=300)
    reloaded = reload.returncode == 0 and reload.stdout.strip().endswith("True")
    return {"promoted_verified": verified, "verification": line.strip(), "reloaded_on_cpu": reloaded,
            "reload_output": (reload.stdout.strip() or reload.stderr.strip()[-300:])}


def versions() -> str:
    import torch

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    cuda = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
    return f"torch {torch.__version__} ({cuda}), triton {triton_version}, python {sys.version.split()[0]}"


def num(value: float | None, fmt: str = ".1f") -> str:
    return "–" if value is None else format(value, fmt)


def write_report(out: Path, rows: list[dict[str, Any]], promotion: dict[str, Any], args: argparse.Namespace,
                 started: str, git: str) -> None:
    device = gpu_name() if not args.dry else "CPU dry run (TRITON_INTERPRET=1; no GPU, timings not meaningful)"
    lines = [
        "# GPU study check", "",
        f"`bash benchmarks/gpu_study_check.sh` (`python -m benchmarks.gpu_study --device {args.device}`), "
        f"{started}, git {git}; {device}; {versions()}.", "",
        "Studies: `studies/window_size.yaml` + `recipes/cifar10-gpu.yaml` + an overlay: local digits folder "
        "(32×32 PNG), `model.backend: triton`, `train.precision: bf16-mixed`, "
        f"`train.compile: {str(COMPILE).lower()}`, 1 epoch of ≤ 20 batches, windows 3 and 7 × seeds 0 and 1. "
        "Two workers = two study commands on the same stores and the one GPU."
        + (" Dry run: 8×8 images, one attention layer, window 3 only, batch 8, 2 batches, on the CPU." if args.dry
           else ""), "",
        "| phase | data | workers | trials complete | wall s | trials/h | GPU util mean % | GPU util median % "
        "| GPU mem max MiB | data-wait share of step time | MLflow records backend/precision/compile | ok |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['mode']} | {r['workers']} | {r['complete']}/{r['trials']} | {r['seconds']:.0f} "
            f"| {num(r['trials_per_hour'], '.0f')} | {num(r['gpu_util_mean'])} | {num(r['gpu_util_median'])} "
            f"| {num(r['gpu_mem_max_mib'], '.0f')} | {num(r['data_wait_mean'], '.3f')} "
            f"| {'yes' if r['recorded_ok'] else 'NO'} | {'yes' if r['ok'] else 'NO'} |")
    one = next((r for r in rows if r["mode"] == "stream" and r["workers"] == 1), None)
    two = next((r for r in rows if r["mode"] == "stream" and r["workers"] == 2), None)
    if one and two and one["trials_per_hour"] and two["trials_per_hour"]:
        lines += ["", f"Stream mode, 2 workers vs 1: {two['trials_per_hour'] / one['trials_per_hour']:.2f}× the "
                      "trials per hour (whole commands, start-up included)."]
    verdict = "passed" if promotion.get("promoted_verified") else "FAILED"
    lines += ["", "Promotion of the first phase's champion with the GPU hidden (`CUDA_VISIBLE_DEVICES=\"\"`): "
                  f"verification on the CPU with the torch backend {verdict}"
                  f" ({promotion.get('verification', 'not run')}); reloaded in a fresh CPU process: "
                  f"{'yes' if promotion.get('reloaded_on_cpu') else 'NO'} ({promotion.get('reload_output', '')})."]
    problems = [p for r in rows for p in r["problems"]]
    if problems:
        lines += ["", "Problems:", *(f"- {p}" for p in problems)]
    (out / "gpu_study.md").write_text("\n".join(lines) + "\n")
    (out / "gpu_study.json").write_text(json.dumps({"rows": rows, "promotion": promotion}, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_study.md / .json and the logs")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: the dry run")
    parser.add_argument("--budget-s", type=float, default=240.0, help="start no new phase after this many seconds")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default OUT/work)")
    args = parser.parse_args(argv)
    args.dry = args.device == "cpu"
    started_at = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    work = (args.work or args.out / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    digits = work / "digits"
    if not digits.exists():
        count = write_digits_folder(digits, size=8 if args.dry else 32, count=140 if args.dry else None)
        print(f"[{stamp()}] wrote {count} digits under {digits}", flush=True)
    git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    rows: list[dict[str, Any]] = []
    for mode, workers in PHASES:
        if rows and time.monotonic() - started_at > args.budget_s:
            print(f"[{stamp()}] budget spent: phase {mode}-w{workers} not run", flush=True)
            continue
        rows.append(run_phase(work, digits, mode, workers, args.dry, args.out))
    promotion = promote_and_reload(rows[0], work) if rows and rows[0]["all_complete"] else {}
    write_report(args.out, rows, promotion, args, started, git.stdout.strip() or "unknown")
    passed = bool(rows) and all(r["ok"] for r in rows) and promotion.get("promoted_verified", False) and \
        promotion.get("reloaded_on_cpu", False)
    print(f"[{stamp()}] wrote {args.out / 'gpu_study.md'}; {'all checks passed' if passed else 'CHECKS FAILED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
