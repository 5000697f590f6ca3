"""``search.confirm``: the confirmation round of a sampled study — on by default, validated with the field named, and
shown by ``--dry-run`` (its trials and what its seeds budget resolves)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from platform.spec import SpecError, parse_spec
from platform.study.confirm import budget_lines, dry_run_rows, fresh_seeds
from tests.platform_tests.studyrun import REPO, env, study_cmd, tiny_spec, write_spec
from tests.support.limits import HANG_S

TPE = {"design": "tpe", "parameters": {"window_size": [3, 5, 7], "heads": [1, 2]}, "n_trials": 4, "seeds": [0, 1]}


def _spec(**search: Any) -> Any:
    return parse_spec({"name": "s", "search": {**TPE, **search}})


def test_a_sampled_design_confirms_by_default_on_fresh_seeds() -> None:
    search = _spec().search
    assert (search.confirmation.finalists, search.confirmation.seeds.min, search.confirmation.seeds.max) == (3, 3, 6)
    assert fresh_seeds(_spec()) == [2, 3, 4]  # never a search seed (0, 1)
    assert _spec(confirm=False).search.confirmation is None
    assert _spec(confirm={"finalists": 2}).search.confirmation.finalists == 2
    assert parse_spec({"name": "g", "search": {"design": "grid", "parameters": {"heads": [1, 2]}}}
                      ).search.confirmation is None


@pytest.mark.parametrize(("search", "expected"), [
    ({"confirm": {"finalists": 0}}, "search.confirm.finalists: must be ≥ 1; got 0"),
    ({"confirm": {"top": 3}}, "search.confirm.top"),
    ({"confirm": {"seeds": [5, 6]}}, "seeds: expected {min: 3, max: 6}"),
    ({"confirm": {"seeds": {"min": 4, "max": 3}}}, "search.confirm.seeds.max: 3 is below min (4)"),
    ({"confirm": "yes"}, "search.confirm: expected true, false or {finalists: 3"),
    ({"design": "grid", "n_trials": None, "confirm": True}, "search.confirm: is for sampled designs"),
    ({"reference": {"window_size": 3}}, "search.reference: the confirmation round re-runs the reference as one "
                                        "design point: set every searched parameter (missing: heads)"),
])
def test_bad_confirm_settings_name_the_field(search: dict[str, Any], expected: str) -> None:
    with pytest.raises(SpecError) as err:
        _spec(**search)
    assert expected in str(err.value), str(err.value)


def test_the_budget_and_rows_with_a_reference() -> None:
    spec = _spec(effect=0.02, reference={"window_size": 7, "heads": 2})
    rows = dry_run_rows(spec)
    assert rows[-1] == ("window_size=7,heads=2 (reference)", 4)
    assert len(rows) == 4 * 3  # 3 finalists + the reference, 3 fresh seeds each
    said = " ".join(budget_lines(spec))
    assert "4 design points" in said and "12 trials" in said and "at most 24 trials" in said, said


def test_the_cli_refuses_a_bad_confirm_with_exit_2_and_the_dry_run_shows_the_round(tmp_path: Path) -> None:
    bad = write_spec(tmp_path / "bad.yaml", tiny_spec("bad", search={**TPE, "confirm": {"finalists": 0}}))
    result = subprocess.run([*study_cmd(bad, tmp_path), "--dry-run"], cwd=REPO, env=env(), capture_output=True,
                            text=True, timeout=HANG_S)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "search.confirm.finalists" in result.stderr + result.stdout
    assert not (tmp_path / "runs").exists()
    good = write_spec(tmp_path / "good.yaml", tiny_spec("good", search={**TPE, "effect": 0.05}))
    dry = subprocess.run([*study_cmd(good, tmp_path), "--dry-run"], cwd=REPO, env=env(), capture_output=True,
                         text=True, timeout=HANG_S)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    said = " ".join(dry.stdout.split())
    assert "confirmation round: its first 9 trials, after the search" in said, dry.stdout
    assert "finalist 1 (by search value)" in said
    assert "re-run on fresh seeds 2–4, never pruned: 9 trials" in said, dry.stdout
    assert "at most 18 trials" in said, dry.stdout
