"""Issue 18, cause 10: a study that compiles keeps Inductor's and Triton's caches in its runs folder and removes
what an interrupted compilation left there (an empty or cut ``.so`` made the next compile fail: "file too
short")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from platform.training.compile_cache import ENV_INDUCTOR, ENV_TRITON, repair, use_runs_cache

ELF = b"\x7fELF" + b"\x02\x01\x01" + b"\x00" * 100


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_INDUCTOR, raising=False)
    monkeypatch.delenv(ENV_TRITON, raising=False)


def test_caches_move_into_the_runs_folder(tmp_path: Path, clean_env: None) -> None:
    folder, removed = use_runs_cache(tmp_path / "runs")
    assert removed == []
    assert Path(os.environ[ENV_INDUCTOR]) == (tmp_path / "runs" / "compile_cache" / "inductor").resolve()
    assert Path(os.environ[ENV_TRITON]) == (tmp_path / "runs" / "compile_cache" / "triton").resolve()
    assert folder == tmp_path / "runs" / "compile_cache"


def test_broken_build_products_are_removed_and_whole_ones_kept(tmp_path: Path, clean_env: None) -> None:
    inductor = tmp_path / "runs" / "compile_cache" / "inductor" / "ab"
    inductor.mkdir(parents=True)
    empty_so, cut_so, text_so = inductor / "empty.so", inductor / "cut.so", inductor / "text.so"
    empty_so.write_bytes(b"")
    cut_so.write_bytes(ELF[:20])
    text_so.write_bytes(b"not an ELF file at all, but long enough to pass a size check" * 2)
    good_so, good_py, lock = inductor / "good.so", inductor / "kernel.py", inductor / "x.lock"
    good_so.write_bytes(ELF)
    good_py.write_text("def kernel(): pass\n")
    lock.write_bytes(b"")  # a lock file is empty by design: not a build product
    _, removed = use_runs_cache(tmp_path / "runs")
    assert sorted(p.name for p in removed) == ["cut.so", "empty.so", "text.so"]
    assert good_so.exists() and good_py.exists() and lock.exists()
    assert repair(tmp_path / "missing") == []
