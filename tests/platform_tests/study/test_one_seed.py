"""A study with ``search.effect`` and one seed (issue 26): its trials run, and it reports without verdicts, saying why.

Before, ``--set 'search.seeds=[0]'`` trained every trial and then ended with exit 1 and a traceback from the
end-of-study summary (``min_seeds=1, max_seeds=1 are not valid``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from optuna.trial import TrialState

from platform.records import ATTR_SEED
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec
from tests.scale_tests.accounting import load_trials
from tests.support.limits import HANG_S

NAME = "one_seed"
WHY = "no verdicts: search.effect is set but the study runs 1 seed"


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp(NAME)
    search = {"design": "grid", "parameters": {"window_size": [3, 5]}, "seeds": [0, 1], "effect": 0.02,
              "reference": {"window_size": 3}}
    spec = write_spec(tmp / f"{NAME}.yaml", tiny_spec(NAME, search=search))
    return tmp, run_study(spec, tmp, "--set", "search.seeds=[0]", forked=True)


def test_the_study_runs_and_says_why_it_has_no_verdicts(one_seed: tuple[Path, subprocess.CompletedProcess]) -> None:
    tmp, result = one_seed
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert "Traceback" not in out
    assert out.count(WHY) >= 2, out[-5000:]  # at the start and with the end-of-study summary
    trials = load_trials(stores(tmp)[0], NAME)
    assert sorted((t.state, t.user_attrs[ATTR_SEED]) for t in trials) == [(TrialState.COMPLETE, 0)] * 2
    pages = list((tmp / "runs" / "reports" / NAME).rglob("*.html"))
    assert pages and any(WHY in page.read_text() for page in pages)


def test_the_dry_run_says_why_too(one_seed: tuple[Path, subprocess.CompletedProcess]) -> None:
    tmp, _ = one_seed
    dry = run_study(tmp / f"{NAME}.yaml", tmp, "--set", "search.seeds=[0]", "--dry-run", timeout=HANG_S, forked=True)
    assert dry.returncode == 0, dry.stderr
    assert WHY in " ".join(dry.stdout.split()), dry.stdout
