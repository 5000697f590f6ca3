"""Checks of image data before anything is built: an image folder's entries, and every image of a stream index.

- :func:`check_image_tree` walks an imagefolder ``data.path`` (links not followed) and refuses what the loader
  would drop or misread without a word: a link named like an image whose target is missing or loops, and images
  at another depth than the rest (a stray file beside the class folders, which turns the class folders off).
- :func:`check_stream_images` opens and decodes every image of every split a stream index uses (train, val and
  test: a broken validation image otherwise passes until the study fails at its first validation). JPEGs are
  decoded at 1/8 scale (PIL's draft mode: every compressed block is still read, so a cut file fails), the rest in
  full; images larger than PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) are refused. The work is
  spread over threads (PIL releases the GIL while it decodes).

Both give one line per problem (``DataError`` with :func:`named`: at most :data:`MAX_NAMED` lines, then a
count); :func:`check_local_images` runs the first before a local source is loaded.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from .sources import IMAGE_SUFFIXES, DataError, detect_format

MAX_NAMED = 20
_CHUNK = 256


def named(problems: list[str], what: str) -> str:
    """The first :data:`MAX_NAMED` problems, one a line, then how many more."""
    shown = problems[:MAX_NAMED]
    more = f"\n… and {len(problems) - MAX_NAMED:,} more {what}" if len(problems) > MAX_NAMED else ""
    return "\n".join(shown) + more


def check_local_images(data_spec: Any) -> None:
    """For a local imagefolder source: refuse broken links and stray images before the loader sees the folder."""
    if getattr(data_spec, "source", None) != "local" or data_spec.path is None:
        return
    fmt = data_spec.format if data_spec.format != "auto" else detect_format(data_spec.path)
    if fmt != "imagefolder" or not Path(data_spec.path).is_dir():
        return
    problems = image_tree_problems(Path(data_spec.path))
    if problems:
        raise DataError(named(problems, "entries"))


def image_tree_problems(root: Path) -> list[str]:
    """Broken image links, else images at an odd depth, under the imagefolder ``root``."""
    broken: list[str] = []
    depths: dict[int, list[str]] = {}
    for folder, subfolders, names in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in [*names, *subfolders]:
            path = here / name
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.is_symlink() and not _resolves(path):
                broken.append(f"data.path {root}: {path.relative_to(root)} is a link whose target is missing or "
                              "loops; fix or remove the link (the data set would silently lose the image)")
            elif path.is_file():
                depths.setdefault(len(path.relative_to(root).parts), []).append(str(path.relative_to(root)))
    if broken:
        return broken
    if len(depths) > 1:
        usual = Counter({depth: len(files) for depth, files in depths.items()}).most_common(1)[0][0]
        layout = "<class>/<image>" if usual == 2 else "/".join(["<folder>"] * (usual - 1) + ["<image>"])
        stray = [f"data.path {root}: {name} is not where the other images are ({layout}); move it into a class "
                 "folder or remove it" for depth, files in sorted(depths.items()) if depth != usual for name in files]
        return stray
    return []


def _resolves(path: Path) -> bool:
    try:
        return path.resolve(strict=True).exists()
    except (OSError, RuntimeError):  # missing target, or a loop
        return False


def image_problem(item: Any) -> str | None:
    """Why one stored image (``{"bytes", "path"}``, as an undecoded ``datasets.Image`` holds it) does not decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(item, dict) and item.get("bytes") is not None:
                source: Any = io.BytesIO(item["bytes"])
            elif isinstance(item, dict) and item.get("path"):
                source = os.fspath(item["path"])
            else:
                return None  # arrays and PIL images were decoded by the dataset already
            with Image.open(source) as image:
                if image.format == "JPEG":
                    image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBomb*, ...
        return f"{type(err).__name__}: {err}"
    return None


def stream_image_problems(splits: dict[str, tuple[Any, str]], *, threads: int | None = None) -> list[str]:
    """Decode every image of ``splits`` (split name → (a ``datasets.Dataset`` of undecoded image records, its image
    column)); one line per image that does not decode."""
    problems: list[str] = []
    workers = threads or min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for split, (records, image_column) in splits.items():
            for start in range(0, len(records), _CHUNK):
                chunk = records[start:start + _CHUNK][image_column]
                for offset, reason in enumerate(pool.map(image_problem, chunk)):
                    if reason is not None:
                        item = chunk[offset]
                        name = item.get("path") if isinstance(item, dict) and item.get("path") else \
                            f"row {start + offset}"
                        problems.append(f"data: could not decode image {name} (split {split}): {reason}; remove "
                                        "or replace the file")
    return problems
