"""Smoke tests of the benchmark command lines on the CPU: they parse their options, run one tiny configuration
and write their tables; the correctness check's reference (the unfold SASA) matches the paper-equation reference.
Speed itself is measured by the benchmarks, never asserted here."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_correctness, models
from benchmarks import sasa as sasa_bench
from tests.sasa.reference import sasa_reference


@pytest.fixture(autouse=True)
def _restore_threads():
    """The benchmarks set torch's thread count (a process-wide setting): give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_sasa_cpu_table_keeps_its_format(tmp_path: Path) -> None:
    sasa_bench.main(["--configs", "8:4:3", "--batch", "1", "--reps", "1", "--out", str(tmp_path)])
    text = (tmp_path / "sasa_quick.md").read_text()
    assert sasa_bench.HEADER in text
    (row,) = read_csv(tmp_path / "sasa_quick.csv")
    assert (row["C"], row["HxW"], row["k"]) == ("8", "4x4", "3")
    for impl in ("sasa", "unfold", "conv"):
        assert float(row[f"{impl}_ms"]) > 0 and float(row[f"{impl}_mib"]) >= 0


def test_sasa_gpu_sweep_runs_on_cpu(tmp_path: Path) -> None:
    argv = ["--device", "cpu", "--gpu-sweep", "--configs", "8:4:3", "--batch", "1", "--reps", "1"]
    sasa_bench.main([*argv, "--backends", "torch", "--dtypes", "fp32,bf16", "--out", str(tmp_path)])
    rows = read_csv(tmp_path / "gpu_sasa.csv")
    assert sorted(r["dtype"] for r in rows) == ["bf16", "fp32"]
    for row in rows:
        for impl in ("torch", "unfold", "conv3", "conv7"):
            assert float(row[f"{impl}_ms"]) > 0, (impl, row)
    text = (tmp_path / "gpu_sasa.md").read_text()
    assert "| bf16 | 8 | 4x4 | 3 |" in text and "SASA2d torch ms" in text and "conv7×7 ms" in text


def test_sasa_budget_leaves_jobs_not_run(tmp_path: Path) -> None:
    argv = ["--device", "cpu", "--gpu-sweep", "--configs", "8:4:3,8:4:5", "--batch", "1", "--reps", "1"]
    sasa_bench.main([*argv, "--backends", "torch", "--dtypes", "fp32", "--budget-s", "0", "--out", str(tmp_path)])
    text = (tmp_path / "gpu_sasa.md").read_text()
    assert text.count("not run (time budget)") == 2 * 4  # both rows, every implementation
    assert "2 job(s) not run" in text


@pytest.mark.parametrize(
    ("command", "argv"),
    [*(("sasa", a) for a in (["--device", "tpu"], ["--configs", "8:4:4"], ["--dtypes", "fp16"],
                             ["--backends", "cuda"], ["--batch", "0"])),
     *(("models", a) for a in (["--sizes", "imagenet"], ["--models", "vit"], ["--precision", "bf16"]))],
)
def test_benchmarks_reject_bad_options(command: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    main = {"sasa": sasa_bench.main, "models": models.main}[command]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_models_cpu_reports_throughput_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "models.md"
    argv = ["--sizes", "study", "--models", "conv,attention", "--steps", "1", "--batch", "2", "--threads", "1"]
    models.main([*argv, "--out", str(out)])
    rows = {r["model"]: r for r in read_csv(out.with_suffix(".csv"))}
    assert set(rows) == {"conv", "attention"}
    assert all(float(r["images_per_s"]) > 0 and r["size"] == "study" for r in rows.values())
    assert "| study | attention | 2 |" in out.read_text()


def test_correctness_passes_the_torch_backend_and_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "correctness.md"
    argv = ["--device", "cpu", "--backend", "torch", "--cases", "10", "--precisions", "fp32,bf16", "--no-model"]
    assert gpu_correctness.main([*argv, "--out", str(out)]) == 0
    text = out.read_text()
    assert "**PASS**: 2/2 checks passed" in text
    assert text.count("| pass |") == 2


def test_correctness_verdict_fails_on_large_or_missing_errors() -> None:
    assert gpu_correctness.verdict({"out": 1e-3, "x": 2e-3}, 1e-2)
    assert not gpu_correctness.verdict({"out": 1e-3, "x": 2e-2}, 1e-2)
    assert not gpu_correctness.verdict({"out": 1e-3, "x": math.nan}, 1e-2)
    assert math.isnan(gpu_correctness.rel_err(None, torch.ones(2)))
    assert gpu_correctness.rel_err(torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0])) == pytest.approx(0.25)


@pytest.mark.parametrize(("pos_enc", "stride", "size"), [("relative", 1, 6), ("none", 1, 5), ("absolute", 2, 5)])
def test_unfold_reference_matches_the_paper_equations(pos_enc: str, stride: int, size: int) -> None:
    torch.manual_seed(0)
    layer = sasa_bench.make_sasa(8, 3, "torch", 2, pos_enc=pos_enc, stride=stride).double()
    x = torch.randn(2, 8, size, size + 1, dtype=torch.float64)
    torch.testing.assert_close(sasa_bench.UnfoldSASA(layer)(x), sasa_reference(layer, x))
