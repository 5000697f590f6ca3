"""A real tiny two-factor study (window size × positional encoding, 2 × 2 cells × 2 seeds, run by
``python -m platform.study``): its report shows the two-way table, the contrasts and the interaction plot, in HTML,
table.md and on an 80-column terminal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from dashboards.__main__ import print_terminal
from platform.reports.publish import report_study
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec

NAME = "twoway"


@pytest.mark.slow
def test_the_report_of_a_two_factor_study_has_the_two_way_table(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / f"{NAME}.yaml", tiny_spec(NAME, search={
        "design": "grid", "parameters": {"window_size": [3, 5], "pos_enc": ["none", "relative"]},
        "seeds": [0, 1], "effect": 0.02, "reference": {"window_size": 5, "pos_enc": "relative"}}))
    result = run_study(spec, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    storage, tracking = stores(tmp_path)
    outcome = report_study(NAME, storage, tracking, tmp_path / "report", log=False)
    found = outcome.report.two_way
    assert found is not None and found.factors == ("window_size", "pos_enc")
    assert found.levels == (("5", "3"), ("relative", "none")) and found.seeds == (0, 1)  # baselines first
    assert [r.kind for r in found.rows] == ["main", "main", "interaction"]
    assert all(r.verdict in ("better", "worse", "equivalent", "undecided", "interaction", "no interaction")
               for r in found.rows)
    markdown = (tmp_path / "report" / "table.md").read_text(encoding="utf-8")
    assert "| window_size \\ pos_enc | relative | none |" in markdown
    assert "window_size 3 − 5 at pos_enc=none minus at pos_enc=relative" in markdown
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Two factors: window_size × pos_enc</h2>" in page and "interaction plot" in page
    assert (tmp_path / "report" / "interaction.png").read_bytes().startswith(b"\x89PNG")
    buffer = io.StringIO()
    print_terminal(outcome, Console(width=80, file=buffer, color_system=None, highlight=False))
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(line for line in lines if len(line) > 80)
    assert any(line.startswith("window_size \\ pos_enc") for line in lines)
