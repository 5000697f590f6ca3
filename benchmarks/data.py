"""Data-path benchmark: ``python -m benchmarks.data [--images N] [--workers 1,2] [--device cpu|cuda] [--model]``.

Measures, on data it builds in a temporary folder (JPEGs of ImageNet-like sizes, 280–420 × 350–500 px):

- streaming at 224 px (PIL decode + RandomResizedCrop + flip, uint8 batches of 64): images/s in one process
  without a DataLoader (the cost of one worker), and through the data module's loader with W worker processes
  over one epoch of the 4N folder (images/s and images/s per worker);
- peak RSS of a process that prepares a folder of N and of 4N images and streams one epoch over it with 2
  workers (main process: ``VmHWM``; largest worker: ``VmRSS`` sampled every 20 ms), to show memory does not grow
  with the number of images;
- the in-memory path at 32 px (digits upscaled, 3 channels, pad-4 crop + flip on ``--device``): images/s of the
  uint8 cache with on-device normalisation and augmentation, beside the previous design (float32 cache,
  augmentation in the CPU ``collate_fn``) reproduced here, in the same run;
- with ``--model`` on CUDA: training images/s of ResNet-50 at 224 px (bf16 autocast, batch 128, channels last),
  the number that says how many streaming workers keep one GPU busy.

Writes ``benchmarks/results/data.md`` (``--out``). Timings are wall clock on whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from platform.data import TrainTransform, build_datamodule, decode_image, pad_crop_flip
from platform.spec import AugmentSpec, DataSpec

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "data.md"
CLASSES = 4


# ------------------------------------------------------------------------------------------- test data
def _write_one(job: tuple[Path, int, int]) -> None:
    root, index, seed = job
    rng = np.random.default_rng([seed, index])
    height, width = int(rng.integers(280, 421)), int(rng.integers(350, 501))
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)  # JPEG-friendly, like photos
    where = root / "train" / f"c{index % CLASSES}"
    where.mkdir(parents=True, exist_ok=True)
    image.save(where / f"{index:06d}.jpg", quality=90)


def write_folder(root: Path, count: int, seed: int = 0) -> None:
    """``count`` JPEGs (quality 90) of smooth random colour fields in ``root/train/<class>/`` (all CPUs)."""
    with multiprocessing.get_context("fork").Pool() as pool:
        pool.map(_write_one, [(root, i, seed) for i in range(count)], chunksize=16)


def _stream_spec(root: Path) -> DataSpec:
    return DataSpec(source="local", path=str(root), image_size=224, mode="stream",
                    augment=AugmentSpec(horizontal_flip=True))  # fmt: skip


# ------------------------------------------------------------------------------------------ measurements
def one_process_rate(root: Path, seconds: float) -> dict[str, float]:
    """Images/s of decode alone and of decode + RandomResizedCrop + flip, one thread, no DataLoader."""
    torch.set_num_threads(1)  # as in a DataLoader worker
    files = sorted(root.rglob("*.jpg"))
    transform = TrainTransform(224)
    rates = {}
    for name, step in (("decode", lambda i, f: decode_image({"path": str(f)}, "bench")),
                       ("decode + crop", lambda i, f: transform(decode_image({"path": str(f)}, "bench"), i))):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step(done, files[done % len(files)])
            done += 1
        rates[name] = done / (time.perf_counter() - start)
    return rates


def loader_rate(root: Path, cache: Path, workers: int) -> float:
    """Images/s of the data module's training loader (uint8 batches of 64) over one epoch after its first batch."""
    dm = build_datamodule(_stream_spec(root), batch_size=64, seed=0, cache_dir=cache, num_workers=workers)
    dm.setup("fit")
    loader = iter(dm.dataloader("train", train=True, prepared=False))
    next(loader)  # start-up: worker processes, first decode
    done, start = 0, time.perf_counter()
    for x, _ in loader:
        done += len(x)
    return done / (time.perf_counter() - start)


def _rss_mb(pid: int | str, field: str = "VmRSS") -> float:
    """A process's resident set (``VmRSS``) or its high-water mark (``VmHWM``) in MB, from /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:  # the process ended between listing and reading
        pass
    return 0.0


def _children() -> list[str]:
    pids: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids += (task / "children").read_text().split()
    return pids


def rss_child(root: Path, cache: Path, workers: int) -> None:
    """(In a fresh process) prepare ``root`` and stream one epoch; print the peak RSS of this process (``VmHWM``:
    ``ru_maxrss`` would include the parent's RSS at fork) and of its largest worker (sampled every 20 ms)."""
    worker_peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal worker_peak
        while not done.is_set():
            worker_peak = max([worker_peak, *(_rss_mb(pid) for pid in _children())])
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    dm = build_datamodule(_stream_spec(root), batch_size=64, seed=0, cache_dir=cache, num_workers=workers)
    dm.setup("fit")
    seen = sum(len(x) for x, _ in dm.dataloader("train", train=True, prepared=False))
    done.set()
    sampler.join()
    print(json.dumps({"images": seen, "main_mb": _rss_mb("self", "VmHWM"), "worker_mb": worker_peak}))


def peak_rss(root: Path, cache: Path, workers: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.data", "--rss-child", str(root), "--cache", str(cache),
                           "--workers", str(workers)], cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_rates(cache: Path, device: torch.device, epochs: int) -> dict[str, float]:
    """Training images/s at 32 px: uint8 cache + on-device augmentation vs the float32 + CPU-collate design."""
    spec = DataSpec(image_size=32, grayscale=False, mode="memory",
                    augment=AugmentSpec(random_crop_padding=4, horizontal_flip=True))  # fmt: skip
    dm = build_datamodule(spec, batch_size=128, seed=0, cache_dir=cache)
    dm.setup("fit")
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None

    def now_path() -> int:
        count = 0
        for x, y in dm.dataloader("train", train=True, prepared=False):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            count += len(dm.prepare_batch((x, y), train=True)[0])
        return count

    floats = dm.example_batch(dm.num_train)  # the same images as the old float32 cache held them
    labels = torch.zeros(len(floats), dtype=torch.int64)
    fill = -torch.tensor(dm.mean) / torch.tensor(dm.std)
    generator = torch.Generator().manual_seed(1)

    def collate(samples: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([s[0] for s in samples])
        y = torch.stack([s[1] for s in samples])
        return pad_crop_flip(x, padding=4, flip=True, fill=fill, generator=generator), y

    def before_path() -> int:
        count = 0
        loader = DataLoader(TensorDataset(floats, labels), batch_size=128, shuffle=True, collate_fn=collate)
        for x, y in loader:
            count += len(x.to(device, non_blocking=True))
            y.to(device)
        return count

    rates = {}
    paths = (("uint8 cache, augmentation on device", now_path), ("float32 cache, collate on CPU", before_path))
    for name, run in paths:
        run()  # warm-up epoch
        sync()
        start = time.perf_counter()
        count = sum(run() for _ in range(epochs))
        sync()
        rates[name] = count / (time.perf_counter() - start)
    rates["cache bytes per image (uint8)"] = float(dm._get("train_x")[0].numel())
    rates["cache bytes per image (float32, before)"] = float(floats[0].numel() * 4)
    return rates


def model_rate(steps: int) -> float:
    """Training images/s of ResNet-50 (conv) at 224 px, bf16 autocast, batch 128, channels last, on CUDA."""
    import sasa  # late: only for this optional measurement

    net = sasa.create_model("resnet50", 1000).cuda().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(128, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (128,), device="cuda")
    for i in range(steps + 3):
        if i == 3:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()
    return steps * 128 / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------ report
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=250,
                        help="N: images of the smaller folder; the larger (4N) is the one the loaders stream")
    parser.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", action="store_true", help="also time ResNet-50 training (CUDA only)")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each one-process timing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    if args.rss_child is not None:
        rss_child(args.rss_child, args.cache, workers[0])
        return
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        small, large, cache = Path(tmp) / "small", Path(tmp) / "large", Path(tmp) / "cache"
        write_folder(small, args.images)
        write_folder(large, 4 * args.images, seed=1)
        single = one_process_rate(small, args.seconds)
        loaders = {w: loader_rate(large, cache, w) for w in workers}
        rss = {n: peak_rss(root, cache, 2) for n, root in ((args.images, small), (4 * args.images, large))}
        memory = memory_rates(cache, torch.device(args.device), epochs=3)
    model = model_rate(30) if args.model and torch.cuda.is_available() else None

    lines += [f"# Data paths (python -m benchmarks.data --images {args.images} --workers {args.workers} "
              f"--device {args.device}{' --model' if args.model else ''})", "",
              f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.uname().nodename}: "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
              f"{', ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ''}; torch {torch.__version__}.",
              "Wall-clock timings: other work on the machine slows them.", "",
              "## Streaming, 224 px (decode + RandomResizedCrop + flip)", "",
              "| what | images/s | images/s per worker |", "|---|---:|---:|"]
    for name, rate in single.items():
        lines.append(f"| one process, {name} (no DataLoader) | {rate:.0f} | {rate:.0f} |")
    for w, rate in loaders.items():
        lines.append(f"| data module loader, {w} worker{'s' if w > 1 else ''} | {rate:.0f} | {rate / max(1, w):.0f} |")
    lines += ["", "## Peak RSS, one streamed epoch (2 workers)", "",
              "| images | main process MB | largest worker MB |", "|---:|---:|---:|"]
    for n, row in rss.items():
        lines.append(f"| {n} | {row['main_mb']:.0f} | {row['worker_mb']:.0f} |")
    (n1, r1), (n4, r4) = rss.items()
    lines += ["", f"Growth from {n1} to {n4} images: main {100 * (r4['main_mb'] / r1['main_mb'] - 1):+.1f}%, "
              f"worker {100 * (r4['worker_mb'] / r1['worker_mb'] - 1):+.1f}% (target: within 20%).", "",
              f"## In-memory path, 32 px, pad-4 crop + flip (device: {args.device})", "",
              "| what | value |", "|---|---:|"]
    for name, value in memory.items():
        lines.append(f"| {name} | {value:.0f}{'' if 'bytes' in name else ' images/s'} |")
    if model is not None:
        per_worker = max(loaders.values()) / max(1, max(loaders, key=loaders.get))
        lines += ["", "## Model throughput (ResNet-50, 224 px, bf16 autocast, batch 128, channels last)", "",
                  f"{model:.0f} training images/s → about {model / per_worker:.1f} streaming workers at "
                  f"{per_worker:.0f} images/s each keep this GPU busy."]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
