"""The outage budget: ``execution.outage_budget`` in the spec (default 5 minutes), ``--outage-budget`` on the command
line (an override the worker processes get too), bad values refused with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform.spec.errors import SpecError
from platform.study.__main__ import build_parser
from platform.study.arguments import request_from
from tests.platform_tests.studyrun import tiny_spec, write_spec


def _request(spec: Path, *extra: str):
    args = build_parser().parse_intermixed_args([str(spec), *extra])
    return request_from(args)


def test_the_budget_defaults_to_five_minutes_and_the_option_overrides_it(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "s.yaml", tiny_spec("budget"))
    spec, _ = _request(spec_path).load()
    assert spec.execution.outage_budget == 300
    request = _request(spec_path, "--outage-budget", "42")
    spec, _ = request.load()
    assert spec.execution.outage_budget == 42
    argv = request.worker_argv()
    assert argv[argv.index("--set", argv.index("--set")) + 1] == "execution.outage_budget=42.0"


@pytest.mark.parametrize("value", ["0", "-5", "nan", "soon", "1e9"])
def test_a_bad_budget_is_refused(tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = write_spec(tmp_path / "s.yaml", tiny_spec("budget"))
    with pytest.raises(SystemExit) as exited:
        _request(spec_path, "--outage-budget", value)
    assert exited.value.code == 2 and "--outage-budget" in capsys.readouterr().err


def test_a_bad_budget_in_the_spec_names_the_field(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "s.yaml", tiny_spec("budget", execution={"outage_budget": 0}))
    with pytest.raises(SpecError, match=r"execution\.outage_budget"):
        _request(spec_path).load()
