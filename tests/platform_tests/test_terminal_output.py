"""What a study writes where nobody watches a terminal (a log file, CI, SLURM): one plain line per trial, no
progress-bar escape codes, then the summary."""

from __future__ import annotations

import os
import subprocess

from tests.platform_tests.studyrun import REPO, study_cmd, tiny_spec, write_spec


def test_study_logged_to_a_file_writes_one_line_per_trial(tmp_path) -> None:
    spec = write_spec(tmp_path / "logged.yaml", tiny_spec(
        "logged", train={"epochs": 2}, search={"design": "grid", "parameters": {"window_size": [3, 5]},
                                               "seeds": [0]}))
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "FORCE_COLOR", "TTY_COMPATIBLE")}
    log = tmp_path / "study.log"
    with log.open("w") as handle:  # stdout and stderr to one file, as `cmd > log 2>&1` or a SLURM job
        code = subprocess.run(study_cmd(spec, tmp_path), cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                              env={**env, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}, timeout=600).returncode
    text = log.read_text()
    assert code == 0, text
    assert "\x1b" not in text and "\r" not in text, repr(text[:2000])
    before_summary = text.split("ran for ")[0].splitlines()
    trial_lines = [line for line in before_summary if line.startswith("trial #")]
    assert [line.split(":")[0] for line in trial_lines] == ["trial #0 window_size=3 seed=0",
                                                           "trial #1 window_size=5 seed=0"], text
    assert trial_lines[-1].endswith("[2/2 done]"), text
    assert len(before_summary) <= 3 * 2, text  # at most 3 lines per trial before the summary
    assert "k=3" in text and "k=5" in text and "best: " in text
