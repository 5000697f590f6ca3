"""Guards for the `platform` name: the package must stand in completely for the standard-library module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import platform
from tests.support.limits import HANG_S

REPO = Path(__file__).resolve().parents[2]
_STDLIB_PROBE = (
    "import json, platform; "
    "print(json.dumps({'file': platform.__file__, 'names': sorted(n for n in dir(platform) if not n.startswith('__')),"
    " 'system': platform.system(), 'machine': platform.machine(), 'python_version': platform.python_version(),"
    " 'release': platform.release(), 'node': platform.node()}))"
)


def _stdlib_view() -> dict:
    # -I: isolated mode, the repo is not on sys.path, so this is the real standard-library module.
    out = subprocess.run([sys.executable, "-I", "-c", _STDLIB_PROBE], capture_output=True, text=True, check=True,
                         cwd="/")
    return json.loads(out.stdout)


def test_package_is_superset_of_stdlib_module() -> None:
    stdlib = _stdlib_view()
    assert hasattr(platform, "__path__") and Path(platform.__file__).parent == REPO / "platform"
    missing = [name for name in stdlib["names"] if not hasattr(platform, name)]
    assert not missing, f"stdlib platform names missing from the package: {missing}"
    for function in ("system", "machine", "python_version", "release", "node"):
        assert getattr(platform, function)() == stdlib[function]


def test_no_submodule_shadows_a_stdlib_attribute() -> None:
    names = set(_stdlib_view()["names"])
    modules = {p.stem for p in (REPO / "platform").glob("*.py")} | {
        p.name for p in (REPO / "platform").iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    clashes = sorted(modules & names)
    assert not clashes, f"platform submodules named like stdlib platform attributes: {clashes}"


def test_libraries_that_call_platform_work_through_the_package() -> None:
    code = (
        "import platform, uuid, torch, mlflow, lightning; "
        "assert hasattr(platform, '__path__'); print(uuid.uuid4().version, platform.system())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", platform.system()]


def test_plain_pytest_and_python_m_pytest_both_collect() -> None:
    target = "tests/platform_tests/test_stdlib_shadow.py::test_package_is_superset_of_stdlib_module"
    pytest_bin = Path(sys.executable).parent / "pytest"
    for command in ([str(pytest_bin), "-q", target], [sys.executable, "-m", "pytest", "-q", target]):
        out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=HANG_S)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "1 passed" in out.stdout
