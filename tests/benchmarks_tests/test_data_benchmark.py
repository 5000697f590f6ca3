"""Smoke test of ``python -m benchmarks.data`` on the CPU: a tiny run writes every section of its table (speed
itself is measured by the benchmark, never asserted)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import data as data_bench


def test_data_benchmark_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "data.md"
    data_bench.main(["--images", "28", "--workers", "1", "--seconds", "0.2", "--device", "cpu", "--out", str(out)])
    text = out.read_text()
    for section in ("## Streaming, 224 px", "## Peak RSS", "## In-memory path, 32 px"):
        assert section in text
    assert "| data module loader, 1 worker |" in text and "| 28 |" in text and "| 112 |" in text  # N and 4N
    assert "| cache bytes per image (uint8) | 3072 |" in text  # 3 × 32 × 32
    assert "| cache bytes per image (float32, before) | 12288 |" in text
