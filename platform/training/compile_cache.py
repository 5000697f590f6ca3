"""Where ``torch.compile`` keeps what it builds: a cache per runs folder, checked before each study compiles.

Inductor and Triton cache compiled kernels in one folder per user by default (``/tmp/torchinductor_<user>``),
shared by every study and project on the machine: a run killed while it compiled once left a 0-byte ``.so`` there,
and the next compile run anywhere failed with "file too short". A study that compiles therefore points both
caches into its runs folder (``<runs>/compile_cache/{inductor,triton}``, set in the environment, so worker
processes inherit it) and, before it starts, removes what an interrupted compilation can leave behind: empty
files, and shared objects that are not whole ELF files. Inductor then builds those kernels again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

ENV_INDUCTOR, ENV_TRITON = "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"
_BUILT = {".so", ".o", ".py", ".cpp", ".h", ".json", ".cubin", ".ptx", ".hsaco", ".llir", ".ttir", ".ttgir",
          ".bin", ".pkl"}
_ELF = b"\x7fELF"
_ELF_MIN_BYTES = 64  # an ELF header alone is 64 bytes (64-bit)


def cache_root(runs: Path) -> Path:
    return runs / "compile_cache"


def _broken(path: Path) -> bool:
    """An empty build product, or a shared object / object file that is not a whole ELF file."""
    try:
        size = path.stat().st_size
        if size == 0:
            return True
        if path.suffix in (".so", ".o"):
            with path.open("rb") as handle:
                return size < _ELF_MIN_BYTES or handle.read(4) != _ELF
    except OSError:
        return True
    return False


def repair(folder: Path) -> list[Path]:
    """Remove the broken build products under ``folder`` (see :func:`_broken`); returns what was removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.rglob("*"):
        if path.suffix in _BUILT and path.is_file() and not path.is_symlink() and _broken(path):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def use_runs_cache(runs: Path) -> tuple[Path, list[Path]]:
    """Point Inductor's and Triton's caches into ``runs`` (this process and the workers it starts) and repair
    them; returns the cache folder and the broken files removed."""
    root = cache_root(runs)
    removed: list[Path] = []
    for variable, name in ((ENV_INDUCTOR, "inductor"), (ENV_TRITON, "triton")):
        folder = (root / name).resolve()
        os.environ[variable] = str(folder)
        removed += repair(folder)
    return root, removed
