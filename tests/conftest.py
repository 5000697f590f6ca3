"""Test tiers: ``slow`` marks a test that starts a study, a server, a browser, or trains for more than a few seconds.

``make test-fast`` runs ``-m "not slow"``; ``make test`` (what CI runs) runs everything. Markers are registered in
pyproject.toml and checked with ``--strict-markers``. So that the fast tier stays what it says, a run that leaves
out ``slow`` refuses — in the test that does it — any process that would start a study or a server or a browser:
a test that needs one must carry the marker.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# What a fast test may not start: programs (by file name) and Python modules (``-m``)
HEAVY_PROGRAMS = frozenset({"mlflow", "postgres", "pg_ctl", "initdb", "chromium", "chromedriver", "optuna-dashboard",
                            "gunicorn", "uvicorn"})
HEAVY_MODULES = ("platform.study", "platform.promote", "mlflow", "tests.cli_tests.forkserver", "optuna_dashboard")


# Marked ``slow`` at collection, by node id prefix (a folder, a module or one test): each starts a study, a server,
# a browser or the fork server, or compiles or trains for more than a few seconds. A new test of that kind elsewhere
# is added here or carries ``@pytest.mark.slow`` itself.
SLOW_PATHS = (
    "tests/api_tests/", "tests/cli_tests/", "tests/scale_tests/", "tests/ui_tests/",
    "tests/benchmarks_tests/test_data_benchmark.py",
    "tests/dashboards_tests/test_cli.py", "tests/dashboards_tests/test_real_stores.py",
    "tests/platform_tests/promote/",
    "tests/platform_tests/data/test_data.py::test_hf_offline_unknown_dataset_is_a_clear_data_error",
    "tests/platform_tests/spec/test_recipes.py::test_cli_merges_recipes_and_prints_the_spec",
    "tests/platform_tests/spec/test_spec_confirm.py::test_the_cli_refuses_a_bad_confirm_with_exit_2_and_the_dry_run",
    "tests/platform_tests/study/test_confirmation.py",
    "tests/platform_tests/study/test_adaptive_seeds.py", "tests/platform_tests/study/test_custom_backbone_e2e.py",
    "tests/platform_tests/study/test_one_seed.py", "tests/platform_tests/study/test_pinned_resume.py",
    "tests/platform_tests/study/test_pinned_sampled.py", "tests/platform_tests/study/test_resume.py",
    "tests/platform_tests/study/test_sampled_repeats.py", "tests/platform_tests/study/test_study_cli.py",
    "tests/platform_tests/study/test_study_e2e.py", "tests/platform_tests/study/test_terminal_output.py",
    "tests/platform_tests/study/test_tracking.py", "tests/platform_tests/study/test_triton_study.py",
    "tests/platform_tests/test_stdlib_shadow.py::test_libraries_that_call_platform_work_through_the_package",
    "tests/platform_tests/training/test_compile_modes.py",
    "tests/platform_tests/training/test_gpu_path.py::test_compile_trains_one_epoch_through_torch_compile",
    "tests/sasa/test_compile.py",
    "tests/sasa/test_models.py::test_whole_model_pickles_and_loads_outside_the_repo",
    "tests/sasa/test_sasa2d.py::test_first_forward_backward_in_a_fresh_process_does_not_import_dynamo",
    "tests/sasa/test_triton_kernel.py::test_other_import_mode",
)
ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
        if f"{where}::{item.name}".startswith(SLOW_PATHS) or where.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)


def fast_tier(config: pytest.Config) -> bool:
    """Is this run the fast tier (a marker expression that leaves ``slow`` out)?"""
    expression = (config.getoption("markexpr", "") or "").replace(" ", "")
    return "notslow" in expression


def heavy_command(args: Any) -> str | None:
    """What in a command line starts a study, a server or a browser (None: nothing heavy)."""
    words = str(args).split() if isinstance(args, str | bytes | Path) else [str(a) for a in args]
    if words and Path(words[0]).name in HEAVY_PROGRAMS:
        return words[0]
    for flag, module in itertools.pairwise(words):
        if flag == "-m" and module.startswith(HEAVY_MODULES):
            return f"-m {module}"
    return None


@contextlib.contextmanager
def refusing_heavy_processes() -> Iterator[None]:
    """Within: starting a study, a server or a browser raises AssertionError before the process exists."""
    original = subprocess.Popen.__init__

    def refuse(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
        heavy = heavy_command(args)
        if heavy is not None:
            raise AssertionError(f"a test of the fast tier starts {heavy!r}: mark it @pytest.mark.slow "
                                 "(tests/conftest.py)")
        original(self, args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse)
        yield


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_starts_nothing_heavy(request: pytest.FixtureRequest) -> Iterator[None]:
    """In the fast tier (only unmarked tests are collected), a heavy process fails the test or fixture starting it."""
    if not fast_tier(request.config):
        yield
        return
    with refusing_heavy_processes():
        yield
