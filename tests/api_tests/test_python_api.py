"""``import sasa_lab`` where the standard ``platform`` is already imported: a tiny study through the Python API,
read back as a DataFrame, reported, and the command-line entry points under the installed name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from platform.api import RESULT_COLUMNS
from platform.records import ATTR_POINT
from tests.api_tests.conftest import lab_env, tiny_study
from tests.support.limits import HANG_S

SCRIPT = r"""
import json, sys
import platform                      # the standard library's, as in any Jupyter kernel
stdlib_platform = platform
import sasa_lab

assert sys.modules["platform"] is stdlib_platform and not hasattr(stdlib_platform, "__path__")
result = sasa_lab.run_study(sys.argv[1], "train.limit_val_batches=1", runs_dir=sys.argv[2])
frame = sasa_lab.load_results(result.name, runs_dir=sys.argv[2])
print("RESULT " + json.dumps({
    "lab_file": sasa_lab.__file__, "platform_file": stdlib_platform.__file__,
    "system": stdlib_platform.system(), "code": result.code, "done": result.done, "total": result.total,
    "report": str(result.report), "points": {p.key: list(p.values) for p in result.points},
    "columns": list(frame.columns), "rows": json.loads(frame.to_json(orient="records")),
    "lab_has_stdlib_names": hasattr(sasa_lab, "uname"),
}))
"""


def _run(site: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=lab_env(site), capture_output=True, text=True,
                          timeout=HANG_S)


def test_tiny_study_through_the_api_after_the_stdlib_platform(lab_site: Path, tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(tiny_study("api_tiny")))
    out = _run(lab_site, tmp_path, "-c", SCRIPT, str(spec), str(tmp_path / "runs"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    got = json.loads(line.removeprefix("RESULT "))

    assert Path(got["lab_file"]).is_relative_to(lab_site)  # the installed copy, not the checkout
    assert Path(got["platform_file"]).name == "platform.py" and got["system"]  # the stdlib module, untouched
    assert got["lab_has_stdlib_names"] is False  # the stdlib source is only executed under the name platform
    assert (got["code"], got["done"], got["total"]) == (0, 2, 2)
    assert Path(got["report"]).is_file()
    assert set(got["points"]) == {"window_size=3", "window_size=5"}

    assert set(RESULT_COLUMNS) <= set(got["columns"])
    rows = got["rows"]
    assert sorted(r[ATTR_POINT] for r in rows) == ["window_size=3", "window_size=5"]
    for row in rows:
        assert row["state"] == "COMPLETE" and row["seed"] == 0 and row["mlflow_status"] == "FINISHED"
        assert row["value"] == got["points"][row["design_point"]][0]  # the same number as the summary
        assert 0.0 <= row["test_acc"] <= 1.0 and row["params"] > 0 and row["flops"] > 0
        assert row["window_size"] == int(row["design_point"].split("=")[1])


def test_entry_points_under_the_installed_name(lab_site: Path, tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(tiny_study("cli_tiny")))
    dry = _run(lab_site, tmp_path, "-m", "sasa_lab.study", str(spec), "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "window_size=3" in dry.stdout and "window_size=5" in dry.stdout
    for module in ("sasa_lab.study", "sasa_lab.promote", "sasa_lab.dashboards"):
        out = _run(lab_site, tmp_path, "-m", module, "--help")
        assert out.returncode == 0 and f"python -m {module}" in out.stdout, out.stderr[-2000:]
    missing = _run(lab_site, tmp_path, "-m", "sasa_lab.promote", "nosuch", "--runs-dir", str(tmp_path / "runs"))
    assert missing.returncode == 2 and "error:" in missing.stderr
    assert not (tmp_path / "runs").exists()


def _readme_api_block() -> str:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("```python\nimport mlflow.pytorch\nimport sasa_lab\n")
    return text[start + len("```python\n"):text.index("```", start + 3)]


def test_readme_python_api_block_runs_as_written(lab_site: Path, tmp_path: Path) -> None:
    """The README's Python API block, verbatim, on a tiny study named window_size at studies/window_size.yaml:
    the URI promote returns is the one its comment shows, the champion loads and takes raw images, and no
    checkpoint is left under runs/ (the README says so)."""
    block = _readme_api_block()
    (tmp_path / "studies").mkdir()
    spec = {**tiny_study("window_size"), "data": {"source": "digits", "image_size": 16}}
    (tmp_path / "studies" / "window_size.yaml").write_text(yaml.safe_dump(spec))
    promised = next(line for line in block.splitlines() if line.startswith("uri = ")).split("#")[1].strip()
    check = (
        "import torch\n"
        f"assert uri == {promised!r}, uri\n"
        "print('SHAPE', tuple(champion(torch.rand(2, 1, 16, 16)).shape), 'ROWS', len(df))\n"
    )
    out = _run(lab_site, tmp_path, "-c", block + check)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "SHAPE (2, 10) ROWS 2" in out.stdout
    assert not list((tmp_path / "runs").rglob("*.ckpt"))
