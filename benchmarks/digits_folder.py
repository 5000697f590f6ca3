"""The digits data (scikit-learn's bundled 8×8 ``load_digits``) written as an image folder, for studies that read
local files: ``ROOT/<digit>/<index>.png``, greyscale, upscaled to ``size``×``size`` (bilinear).

    python -m benchmarks.digits_folder ROOT [--size 32] [--count N]

Used by the GPU study check (``benchmarks/gpu_study_check.sh``) and the tests of the Triton path through the
platform; nothing here needs a network or a GPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def write_digits_folder(root: Path, size: int = 32, count: int | None = None) -> int:
    """Write the first ``count`` digits (all 1797 when None), classes interleaved as in the source, under
    ``root/<digit>/``; returns the number of images written."""
    from sklearn.datasets import load_digits  # late: heavy third-party

    bunch = load_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)  # (N, 8, 8), 0..16 → 0..255
    labels = bunch.target
    n = len(images) if count is None else min(count, len(images))
    for index in range(n):
        where = root / str(int(labels[index]))
        where.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(images[index])  # uint8 (8, 8): greyscale ("L")
        if size != image.width:
            image = image.resize((size, size), Image.BILINEAR)
        image.save(where / f"{index:05d}.png")
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder to write (created)")
    parser.add_argument("--size", type=int, default=32, help="side of the written images (default 32)")
    parser.add_argument("--count", type=int, default=None, help="how many digits (default: all 1797)")
    args = parser.parse_args(argv)
    if args.size < 1 or (args.count is not None and args.count < 1):
        parser.error("--size and --count must be positive")
    n = write_digits_folder(args.root, args.size, args.count)
    print(f"wrote {n} digits of {args.size}x{args.size} under {args.root}")


if __name__ == "__main__":
    main()
