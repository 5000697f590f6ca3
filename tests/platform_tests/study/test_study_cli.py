"""The CLI's contract: exit codes, nothing created on bad input, --dry-run, --help, --fresh, conflicts."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from platform.study import __main__ as study_cli
from tests.platform_tests.studyrun import run_study, stores, tiny_spec, write_spec


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        study_cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--set", "--dry-run", "--storage", "--tracking-uri", "--fresh", "--workers", "--runs-dir"):
        assert option in text


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"model": {"kernal_size": 7}}, "did you mean 'kernel_size'"),
        ({"search": {"design": "grid", "parameters": {"window_size": [3, 4]}, "seeds": [0]}}, "even"),
        ({"objective": {"metric": "val/accuracy"}}, "never logged"),
        ({"data": {"source": "local", "path": "/no/such/folder"}}, "does not exist"),
    ],
)
def test_bad_spec_exits_2_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, fragment: str
) -> None:
    spec = write_spec(tmp_path / "bad.yaml", tiny_spec("bad", **change))
    code = study_cli.main([str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_cli_misuse_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert study_cli.main([str(tmp_path / "missing.yaml"), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    spec = write_spec(tmp_path / "ok.yaml", tiny_spec("ok"))
    assert study_cli.main([str(spec), "--set", "train.epochs", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "dotted.key=value" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        study_cli.main(["--no-such-flag"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "runs").exists()


def test_unreachable_tracking_server_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path / "ok.yaml", tiny_spec("ok"))
    code = study_cli.main([str(spec), "--runs-dir", str(tmp_path / "runs"),
                           "--tracking-uri", "http://user:hunter2@127.0.0.1:9/"])
    err = capsys.readouterr().err
    assert code == 2
    assert "MLflow is unreachable" in err and "hunter2" not in err


def test_dry_run_lists_every_trial_and_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path / "dry.yaml", tiny_spec("dry"))
    assert study_cli.main([str(spec), "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "4 trials" in out
    assert out.count("window_size=3") == 2 and out.count("window_size=5") == 2
    assert not (tmp_path / "runs").exists()


def test_dry_run_states_what_the_seeds_budget_can_decide(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one line per sentence
    adaptive = {"design": "grid", "parameters": {"window_size": [3, 5, 7]}, "seeds": {"min": 2, "max": 4},
                "effect": 0.02, "reference": {"window_size": 7}}
    # every validation batch evaluated: the dry run knows the study's N before any trial
    spec = write_spec(tmp_path / "dry.yaml", tiny_spec("dry", search=adaptive, train={"limit_val_batches": None}))
    assert study_cli.main([str(spec), "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("power (2–4 seeds, 2 comparisons"))
    assert "a true difference of 2σ is called better" in line and "80 % power needs a difference of" in line
    assert "N = 270 examples" in line  # the study's own split: digits' validation fraction of its 1797 images
    assert "σ unknown (no paired trials yet)" in out and "sign test) never within max seeds" in out
    assert not (tmp_path / "runs").exists()
    # train.limit_val_batches: validation counts only the batches evaluated, so no split size is claimed
    spec = write_spec(tmp_path / "dry.yaml", tiny_spec("dry", search=adaptive))
    assert study_cli.main([str(spec), "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("power (2–4 seeds"))
    assert "N = " not in line, line


def test_changed_spec_conflicts_and_fresh_archives(tmp_path: Path) -> None:
    one_point = {"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0]}
    spec = write_spec(tmp_path / "s.yaml", tiny_spec("s", search=one_point))
    assert run_study(spec, tmp_path, forked=True).returncode == 0
    # Same name, different training budget: refusing is the only safe default.
    changed = write_spec(tmp_path / "s.yaml", tiny_spec("s", search=one_point, train={"limit_train_batches": 2}))
    conflict = run_study(changed, tmp_path, forked=True)
    assert conflict.returncode == 2
    assert "train.limit_train_batches" in conflict.stderr and "--fresh" in conflict.stderr
    fresh = run_study(changed, tmp_path, "--fresh", forked=True)
    assert fresh.returncode == 0, fresh.stderr
    storage, _ = stores(tmp_path)
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names[0] == "s" and names[1].startswith("s.archived-")
    for name in names:  # the archived study kept its completed trial; the new one ran its own
        assert [t.state for t in optuna.load_study(study_name=name, storage=storage).get_trials()] == [
            TrialState.COMPLETE
        ]
