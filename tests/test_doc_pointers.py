"""Pointers in the docs are true: every repo path, ``file.py:line``, ``file.py::test`` and dotted Python name
written as code in README.md and docs/*.md exists in this checkout.

A pointer is an inline code span. Paths start with a top-level folder of the repo (``platform/study/run.py``,
``tests/sasa/``, globs such as ``studies/*.yaml`` must match something); ``:N`` / ``:N-M`` must be lines of the
file, ``::name`` a function or class in it. Dotted names that start with a package (``sasa.create_model``,
``platform.spec.load_spec``, ``sasa_lab.run_study``) are resolved in the source with ``ast``: the longest prefix
that is a module, then a top-level name in it, then (for a class) an attribute. Persisted names that look dotted
(MLflow tags such as ``sasa.design_point``) are told apart by being values of ``platform/records.py``.
"""

from __future__ import annotations

import ast
import functools
import re
import sysconfig
from pathlib import Path

import pytest

import platform.records as records
from tests.test_docs import DOCS, README, ROOT

REPO = ROOT
DOC_FILES = [README, *sorted(DOCS.glob("*.md"))]

ROOTS = ("sasa", "platform", "dashboards", "benchmarks", "tests", "studies", "recipes", "docs", ".ci", "sasa_lab")
PACKAGES = {"sasa": "sasa", "platform": "platform", "sasa_lab": "platform", "dashboards": "dashboards",
            "benchmarks": "benchmarks"}
# Paths the docs name on purpose although they do not exist, each with the reason.
ABSENT_ON_PURPOSE = {
    "tests/platform/": "design.md: why the platform's tests are NOT in a folder of that name",
}
_SPAN = re.compile(r"`([^`\n]+)`")
_ROOTS = "|".join(re.escape(r) for r in ROOTS)
_PATH = re.compile(rf"^(?P<path>(?:{_ROOTS})/[\w./*-]*)(?::(?P<start>\d+)(?:-(?P<end>\d+))?|::(?P<name>\w+))?$")
_DOTTED = re.compile(rf"^(?P<name>(?:{'|'.join(PACKAGES)})(?:\.\w+)+)(?:\(.*\))?$")
_FILE_SUFFIXES = (".csv", ".yaml", ".yml", ".md", ".py", ".png", ".json", ".db", ".html", ".txt", ".ipynb")


@functools.cache
def _persisted_values() -> frozenset[str]:
    """The persisted names of platform/records.py (tags, keys), incl. the test metrics' model-version tags."""
    values = {v for k, v in vars(records).items() if k.isupper() and isinstance(v, str)}
    return frozenset(values | {records.version_metric_tag(m) for m in records.LOGGED_METRICS})


def _is_persisted(name: str) -> bool:
    """A persisted name, or one built from a persisted prefix (``sasa.design.<parameter>``; not a bare ``sasa.``)."""
    values = _persisted_values()
    return name in values or any(name.startswith(v) for v in values if v.endswith(".") and v.count(".") > 1)


def _module_file(parts: list[str]) -> Path | None:
    base = REPO.joinpath(PACKAGES[parts[0]], *parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    names: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        names[leaf.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
        elif isinstance(node, ast.If | ast.Try | ast.With):  # names bound under a guard count too
            names.update(_defined([*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]))
    return names


def _stdlib_platform_has(name: str) -> bool:
    """The interpreter's own ``platform`` module, which platform/__init__.py executes into the package."""
    stdlib = Path(sysconfig.get_paths()["stdlib"]) / "platform.py"
    return name in _defined(ast.parse(stdlib.read_text(encoding="utf-8")).body)


def dotted_problem(name: str) -> str | None:
    """Why the dotted Python name ``name`` does not exist in the source, or None when it does."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = _module_file(parts[:cut])
        if module is None:
            continue
        rest = parts[cut:]
        if not rest:
            return None
        names = _defined(ast.parse(module.read_text(encoding="utf-8")).body)
        if rest[0] not in names:
            if parts[0] in ("platform", "sasa_lab") and cut == 1 and _stdlib_platform_has(rest[0]):
                return None
            return f"{module.relative_to(REPO)} defines no {rest[0]!r}"
        node = names[rest[0]]
        if len(rest) > 1 and isinstance(node, ast.ClassDef) and rest[1] not in _defined(node.body):
            return f"class {rest[0]} in {module.relative_to(REPO)} has no {rest[1]!r}"
        return None
    return f"no module {parts[0]} in the repo"


def path_problem(path: str, start: str | None, end: str | None, name: str | None) -> str | None:
    """Why the repo path pointer does not hold, or None."""
    if path in ABSENT_ON_PURPOSE:
        return None
    if "*" in path:
        return None if list(REPO.glob(path)) else f"{path} matches no file"
    target = REPO / path
    if not target.exists() and (REPO / f"{path}.py").is_file():  # a module named without its suffix
        target = REPO / f"{path}.py"
    if not target.exists():
        return f"{path} does not exist"
    if start is not None:
        lines = len(target.read_text(encoding="utf-8").splitlines())
        last = int(end or start)
        if not 1 <= int(start) <= last <= lines:
            return f"{path}:{start}{'-' + end if end else ''} is past the file's {lines} lines"
    if name is not None and name not in _defined(ast.parse(target.read_text(encoding="utf-8")).body):
        return f"{path} defines no {name!r}"
    return None


def pointer_problems(text: str) -> list[str]:
    """One line per pointer in ``text`` (markdown) that does not hold."""
    problems = []
    for span in _SPAN.findall(text):
        span = span.strip()
        if (match := _PATH.match(span)) is not None:
            problem = path_problem(match["path"], match["start"], match["end"], match["name"])
        elif (match := _DOTTED.match(span)) is not None and not span.endswith(_FILE_SUFFIXES):
            dotted = match["name"]
            problem = None if _is_persisted(dotted) else dotted_problem(dotted)
        else:
            continue
        if problem:
            problems.append(f"`{span}`: {problem}")
    return problems


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_code_pointers_in_docs_exist(path: Path) -> None:
    problems = pointer_problems(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(REPO)}:\n" + "\n".join(problems)


def test_pointer_check_catches_what_drifted() -> None:
    text = ("`platform/study/run.py` `platform/study/run.py:1-3` `platform/study/gone.py` `platform/records.py:99999` "
            "`tests/test_docs.py::test_readme_is_at_most_250_lines` `tests/test_docs.py::test_gone` "
            "`sasa.create_model` `sasa.create_modle` `platform.spec.load_spec` `platform.study.run.StudyRequest.load` "
            "`platform.study.run.StudyRequest.unload` `sasa_lab.run_study` `sasa.design_point` `studies/*.yaml` "
            "`studies/*.toml` `platform.system()`")
    problems = pointer_problems(text)
    assert [p.split("`")[1] for p in problems] == [
        "platform/study/gone.py", "platform/records.py:99999", "tests/test_docs.py::test_gone", "sasa.create_modle",
        "platform.study.run.StudyRequest.unload", "studies/*.toml",
    ], problems
