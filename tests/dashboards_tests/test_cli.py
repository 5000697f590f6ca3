"""``python -m dashboards``: one-line errors with exit code 2, YAML or name targets, default output, ``--all``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from dashboards.__main__ import main
from tests.dashboards_tests.stored import Stores, add_study, make_stores, resolved_spec
from tests.platform_tests.studyrun import REPO, env, tiny_spec
from tests.support.limits import HANG_S

GRID = {"design": "grid", "parameters": {"window_size": [3, 5, 7]}, "seeds": [0, 1, 2], "reference": {"window_size": 7}}
VALUES = {(3,): {0: 0.70, 1: 0.72, 2: 0.71}, (5,): {0: 0.80, 1: 0.83, 2: 0.81}, (7,): {0: 0.90, 1: 0.92, 2: 0.93}}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    st = make_stores(tmp_path_factory.mktemp("cli") / "runs")
    add_study(st, resolved_spec("window", search=GRID), VALUES)
    pos = {"design": "grid", "parameters": {"pos_enc": ["none", "absolute", "relative"]}, "seeds": [0, 1]}
    add_study(st, resolved_spec("posenc", search=pos),
              {("none",): {0: 0.6, 1: 0.62}, ("absolute",): {0: 0.65, 1: 0.66}, ("relative",): {0: 0.7, 1: 0.73}})
    optuna.copy_study(from_study_name="posenc", from_storage=st.storage, to_storage=st.storage,
                      to_study_name="posenc.archived-20260101-000000")
    return st


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_unknown_study_exits_2_with_one_line(stores: Stores) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dashboards", "nosuch", "--storage", stores.storage, "--tracking-uri",
         stores.tracking], cwd=REPO, env=env(), capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: no study named 'nosuch' in {stores.storage}; studies there: window, posenc"]


def test_unreachable_stores_exit_2(stores: Stores, tmp_path: Path, capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"sqlite:///{tmp_path / 'missing' / 'optuna.db'}"
    assert main(["window", "--storage", missing, "--tracking-uri", stores.tracking]) == 2
    assert "no such database file" in _one_error_line(capsys)
    assert not (tmp_path / "missing").exists()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    assert main(["window", "--storage", stores.storage, "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert "MLflow is unreachable" in _one_error_line(capsys)


def test_bad_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(tiny_spec("bad", search={"parameters": {"window_size": [4]}})))
    assert main([str(bad)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {bad}") and "window size 4 is even" in line
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert main([str(broken)]) == 2
    assert _one_error_line(capsys).startswith(f"error: {broken}")
    assert main([str(tmp_path / "absent.yaml")]) == 2
    assert "file not found" in _one_error_line(capsys)


def test_study_and_all_together_is_an_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["window", "--all"]) == 2
    assert "not both" in _one_error_line(capsys)


def test_yaml_target_uses_the_stored_spec_and_default_output(stores: Stores, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "window.yaml"  # reference changed to 5 in the file: the study ran with 7, which is reported
    spec.write_text(yaml.safe_dump(tiny_spec("window", search={**GRID, "reference": {"window_size": 5}})))
    assert main([str(spec), "--runs-dir", str(stores.root), "--no-log"]) == 0
    out = capsys.readouterr().out
    report = stores.root / "reports" / "window"
    assert f"report: {report / 'report.html'}" in out
    assert "| window_size=5 |" in out and "search.reference (window_size=7)" in out
    assert f"note: {spec} differs from the spec study 'window' ran with (" in out
    assert "search.reference" in out.split("differs from the spec", 1)[1].split("\n", 1)[0]
    table = (report / "table.md").read_text()
    header = next(ln for ln in table.splitlines() if ln.startswith("| design point"))
    columns = [c.strip() for c in header.strip("|").split("|")]

    def verdict(point: str) -> str:
        row = next(ln for ln in table.splitlines() if ln.startswith(f"| {point} |"))
        return dict(zip(columns, (c.strip() for c in row.strip("|").split("|")), strict=True))["verdict"]

    assert verdict("window_size=7") == "reference"
    assert verdict("window_size=5") == "worse"
    # the same YAML as the study's: no note
    spec.write_text(yaml.safe_dump(tiny_spec("window", search=GRID)))
    assert main([str(spec), "--runs-dir", str(stores.root), "--no-log"]) == 0
    assert "differs from the spec" not in capsys.readouterr().out


def test_all_writes_an_index_of_every_study(stores: Stores, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "reports"
    assert main(["--all", "--storage", stores.storage, "--tracking-uri", stores.tracking, "--out", str(out)]) == 0
    assert "2 studies, 1 archived" in capsys.readouterr().out
    for name in ("window", "posenc"):
        assert (out / name / "report.html").is_file()
    assert not (out / "posenc.archived-20260101-000000").exists()
    html = (out / "index.html").read_text()
    assert '<a href="window/report.html">window</a>' in html and '<a href="posenc/report.html">posenc</a>' in html
    assert "Archived studies" in html and "posenc.archived-20260101-000000" in html
    assert "<script" not in html
    index = (out / "index.md").read_text()
    assert "| [window](window/report.html) | grid | window_size | 9/0/0 | window_size=7 |" in index
    assert "## window ↔ paper Table 4" in index and "## posenc ↔ paper Table 5" in index
    # Paper Table 5: relative > absolute > none, and so are ours → the ranking agrees
    posenc_row = next(line for line in index.splitlines() if line.startswith("| [posenc]"))
    assert posenc_row.endswith("| Table 5 | agrees |")
    # window: ours rank 7 > 5 > 3, paper 7 > 5 > 3 among the matched levels
    assert next(ln for ln in index.splitlines() if ln.startswith("| [window]")).endswith("| Table 4 | agrees |")


def test_help_of_every_command_prints_percent_signs_once() -> None:
    """argparse %-formats help strings but not the description: '%%' there reaches the user as '%%'."""
    from dashboards.__main__ import build_parser as report_parser
    from platform.promote.__main__ import build_parser as promote_parser
    from platform.study.__main__ import build_parser as study_parser

    for parser in (report_parser(), promote_parser(), study_parser()):
        text = parser.format_help()
        assert "%%" not in text, text
    assert "95 % CI" in report_parser().format_help()


def _on_a_terminal(command: list[str], columns: int) -> str:
    """Run ``command`` with its output on a pseudo-terminal ``columns`` wide; its text without colour codes."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    clean = {k: v for k, v in env().items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.Popen(command, cwd=REPO, stdin=follower, stdout=follower, stderr=follower, env=clean)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=HANG_S) == 0, b"".join(chunks).decode(errors="replace")
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", text)


def test_on_an_80_column_terminal_no_line_is_longer(tmp_path: Path) -> None:
    """Issue 25: on a terminal the report's table takes the summary's layouts (no Markdown rows wrapping mid-word),
    the verdict comes first and the legend says what it means; piped, the same command prints Markdown."""
    st = make_stores(tmp_path / "runs")
    search = {"design": "grid", "parameters": {"window_size": [3, 5, 7, 9, 11]}, "seeds": [0, 1, 2], "effect": 0.02,
              "reference": {"window_size": 7}}
    add_study(st, resolved_spec("window_size", search=search),
              {(k,): {s: 0.9 + 0.001 * k + 0.002 * s for s in range(3)} for k in (3, 5, 7, 9, 11)})
    command = [sys.executable, "-m", "dashboards", "window_size", "--storage", st.storage, "--tracking-uri",
               st.tracking, "--out", str(tmp_path / "out")]
    text = _on_a_terminal(command, 80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert not any(line.startswith("|") for line in lines)  # no Markdown rows
    assert "k=11" in text and "verdict" in text and "reference" in text
    assert "Legend (Δ = level − reference in val/acc, paired by seed)" in " ".join(text.split())
    piped = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env(), timeout=HANG_S)
    assert piped.returncode == 0 and "| design point | val/acc (mean ± std) | verdict |" in piped.stdout
