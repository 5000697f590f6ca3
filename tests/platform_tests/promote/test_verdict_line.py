"""The registry version's description says its design point's verdict with the verdicts' legend (issue 25), so
"worse" there is not read as "worse by at least the effect"; without ``search.effect`` there is no verdict line."""

from __future__ import annotations

from pathlib import Path

import optuna

from platform.promote.promotion import verdict_line
from platform.spec.study_spec import parse_spec
from tests.dashboards_tests.stored import add_study, make_stores, resolved_spec

GRID = {"design": "grid", "parameters": {"window_size": [3, 5, 7]}, "seeds": [0, 1, 2, 3, 4, 5],
        "reference": {"window_size": 7}}


def test_the_champions_point_gets_its_verdict_and_the_legend(tmp_path: Path) -> None:
    st = make_stores(tmp_path / "runs")
    spec = resolved_spec("effect", search={**GRID, "effect": 0.02})
    base = {s: 0.90 + 0.004 * ((s * 3) % 5) for s in range(6)}
    add_study(st, spec, {(3,): {s: v - 0.05 + 0.002 * (s % 3) for s, v in base.items()}, (5,): base, (7,): base})
    study = optuna.load_study(study_name="effect", storage=st.storage)
    parsed = parse_spec(spec, stored=True)
    three = verdict_line(study, parsed, "window_size=3")
    assert three is not None and three.startswith("Its design point against the reference: worse (Δ -0.04")
    assert "not necessarily by ±0.02" in three and "equivalent = |Δ| < 0.02 shown (TOST)" in three
    assert verdict_line(study, parsed, "window_size=7").startswith("Its design point against the reference: the "
                                                                 "reference. Legend")


def test_no_verdicts_no_line(tmp_path: Path) -> None:
    st = make_stores(tmp_path / "runs")
    spec = resolved_spec("plain", search=GRID)
    add_study(st, spec, {(k,): {s: 0.9 for s in range(6)} for k in (3, 5, 7)})
    study = optuna.load_study(study_name="plain", storage=st.storage)
    assert verdict_line(study, parse_spec(spec, stored=True), "window_size=3") is None
