"""Every persisted name is spelled once, in ``platform/records.py``: an AST check over the product code.

A *persisted name* is any string constant of ``platform.records`` (an upper-case module attribute, or a string in
an upper-case tuple of them), plus anything that looks like an MLflow tag (``sasa.*``, ``mlflow.*``). The check
parses every module under ``platform/`` and ``dashboards/`` (not ``records.py``) and reports, as ``file:line``
and the string:

- **a literal equal to a distinctive persisted name** (``"test/acc"``, ``"design_point"``, ``"sasa.role"``) or
  looking like a tag: anywhere except docstrings, logger names and module names;
- **an f-string that builds a tag or metric from a persisted prefix** (``f"sasa.design.{key}"``,
  ``f"best/{metric}"``); f-strings of prose (spaces, or a persisted name inside a sentence) are not names;
- **a persisted plain word used as a recorded value**: plain lower-case words (``"study"``, ``"sampled"``,
  ``"interrupted"``) are everyday words too (argparse names, table headers), so they are reported only where they
  are a value of a records key: compared with an expression that reads one (``attrs.get(ATTR_ORIGIN) ==
  "sampled"``), a dict value under one (``{TAG_ROLE: "study"}``), or an argument next to one
  (``set_user_attr(ATTR_ORIGIN, "sampled")``; a ``.get`` default is not a value), or the value an MLflow search
  compares a records tag with (``f"tags.`{TAG_ROLE}` = 'study'"``).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import platform.records as records

REPO = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ("platform", "dashboards")
RECORDS = Path("platform/records.py")
# A tag-like literal (``sasa.role``, ``mlflow.runName``); file names (``mlflow.db``) are not tags.
TAG_LIKE = re.compile(r"(sasa|mlflow)\.(?!(db|json|yaml|yml|py|log|csv|html|md)$)[A-Za-z0-9_.]+")
PLAIN_WORD = re.compile(r"[a-z]+")
FILTER_VALUE = re.compile(r"`?\s*!?=\s*'([^'{}]+)'")  # the quoted value after tags.`{KEY}` in a search
# Calls whose string arguments name a logger or a module, not a persisted value (``getLogger("mlflow.pytorch")``).
NOT_NAMES_CALLS = {"getLogger", "import_module", "find_spec", "filterwarnings"}
# Calls whose first argument names a report column (dashboards/columns.py: a table.csv header such as
# "design_point"), defined once by the column list; a header is output, not a stored key.
COLUMN_CALLS = {"Column"}
# Modules allowed to spell persisted names, each tied to records by a test that fails when they differ.
TIED_COPIES = {
    "platform/spec/metrics.py": "the spec (bottom layer, beside records) spells the metric vocabulary it validates; "
                                "test_spec.py::test_the_spec_metrics_are_the_logged_ones",
}
# Dict/sequence methods whose string argument next to a records key is a default, not a recorded value.
DEFAULT_CALLS = {"get", "pop", "setdefault"}


def persisted_names() -> dict[str, str]:
    """Every persisted string of ``platform.records`` → the constants that define it (``ATTR_X or FAIL_Y``)."""
    constants: dict[str, list[str]] = {}
    members: dict[str, str] = {}
    for attr, value in vars(records).items():
        if attr.isupper() and isinstance(value, str) and value:
            constants.setdefault(value, []).append(attr)
        elif attr.isupper() and isinstance(value, tuple):
            members.update((item, f"{attr} member") for item in value if isinstance(item, str) and item)
    return {**members, **{value: " or ".join(attrs) for value, attrs in constants.items()}}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text!r} ({self.why})"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of string constants that are whole statements (docstrings and bare strings)."""
    return {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and _is_str(node.value)}


def _records_imports(tree: ast.AST) -> set[str]:
    """Local names bound to constants imported from ``records`` (``from ..records import TAG_ROLE``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "records":
            found.update(alias.asname or alias.name for alias in node.names if alias.name.isupper())
    return found


def _reads_records(node: ast.AST, keys: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in keys for n in ast.walk(node))


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(node.value)


def check_source(source: str, path: str, names: dict[str, str] | None = None) -> list[Finding]:
    """Persisted names spelled out in ``source`` (the rules in the module docstring)."""
    names = persisted_names() if names is None else names
    tree = ast.parse(source, filename=path)
    skip = _docstrings(tree)
    keys = _records_imports(tree)
    prefixes = {value for value in names if value.endswith(("/", "."))}
    findings: list[Finding] = []
    in_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in NOT_NAMES_CALLS:
            skip.update(id(arg) for arg in node.args)
        elif isinstance(node, ast.Call) and _call_name(node) in COLUMN_CALLS and node.args:
            skip.add(id(node.args[0]))
        elif isinstance(node, ast.JoinedStr):
            in_fstring.update(id(part) for part in node.values)
            head = node.values[0] if node.values else None
            if _is_str(head) and (head.value in prefixes or TAG_LIKE.fullmatch(head.value)):
                findings.append(Finding(path, node.lineno, head.value, "f-string builds a persisted name"))
            findings += _filter_values(node, path, names, keys)
    for node in ast.walk(tree):
        if not _is_str(node) or id(node) in skip or id(node) in in_fstring:
            continue
        value = node.value
        if value in names and not PLAIN_WORD.fullmatch(value):
            findings.append(Finding(path, node.lineno, value, f"records.{names[value]}"))
        elif TAG_LIKE.fullmatch(value):
            findings.append(Finding(path, node.lineno, value, "looks like an MLflow tag"))
    findings += _values_of_keys(tree, path, names, keys)
    return sorted(set(findings), key=lambda f: (f.line, f.text))


def _filter_values(node: ast.JoinedStr, path: str, names: dict[str, str], keys: set[str]) -> list[Finding]:
    """A persisted value typed into an MLflow search on a records tag: ``f"tags.`{TAG_ROLE}` = 'study'"``."""
    found = []
    for before, part in itertools.pairwise(node.values):
        if isinstance(before, ast.FormattedValue) and _reads_records(before.value, keys) and _is_str(part):
            match = FILTER_VALUE.match(part.value)
            if match and match.group(1) in names:
                value = match.group(1)
                found.append(Finding(path, node.lineno, value, f"search value: records.{names[value]}"))
    return found


def _values_of_keys(tree: ast.AST, path: str, names: dict[str, str], keys: set[str]) -> Iterator[Finding]:
    """Plain-word persisted values used as the value of a records key (compared, dict value, call argument)."""

    def why(value: str) -> str:
        return f"value of a records key: records.{names[value]}"

    def hit(node: ast.AST) -> bool:
        return _is_str(node) and node.value in names and PLAIN_WORD.fullmatch(node.value) is not None

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_reads_records(o, keys) for o in operands if not _is_str(o)):
                yield from (Finding(path, o.lineno, o.value, why(o.value)) for o in operands if hit(o))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None and _reads_records(key, keys) and hit(value):
                    yield Finding(path, value.lineno, value.value, why(value.value))
        elif (isinstance(node, ast.Call) and _call_name(node) not in DEFAULT_CALLS
              and any(isinstance(a, ast.Name) and a.id in keys for a in node.args)):
            yield from (Finding(path, a.lineno, a.value, why(a.value)) for a in node.args if hit(a))


def product_modules() -> list[Path]:
    return sorted(p for d in PRODUCT_DIRS for p in (REPO / d).rglob("*.py") if p.relative_to(REPO) != RECORDS)


def check_product() -> list[Finding]:
    names = persisted_names()
    findings = []
    for path in product_modules():
        rel = path.relative_to(REPO).as_posix()
        tree_source = path.read_text(encoding="utf-8")
        findings += [Finding(rel, f.line, f.text, f.why) for f in check_source(tree_source, rel, names)]
    return findings


# --- the check -----------------------------------------------------------------------------------------------


def test_no_persisted_name_is_spelled_outside_records() -> None:
    findings = [f for f in check_product() if f.path not in TIED_COPIES]
    assert not findings, "persisted names spelled outside platform/records.py (import the constant):\n" + "\n".join(
        map(str, findings))


# --- the check can fail ----------------------------------------------------------------------------------------

SYNTHETIC = '''
"""A docstring may say sasa.role and test/acc."""
from platform.records import ATTR_ORIGIN, TAG_FAIL, TAG_ROLE

def tag(client, run_id, trial, key, attrs, x):
    client.set_tag(run_id, "sasa.role", "trial")
    tags = {TAG_ROLE: "study", "sasa.custom_thing": 1}
    trial.set_user_attr(ATTR_ORIGIN, "sampled")
    if attrs.get(ATTR_ORIGIN) == "sampled":
        pass
    metric = "test/acc"
    name = f"sasa.design.{key}"
    best = f"best/{key}"
    prose = f"the tag sasa.role is {x}; test/acc = {x}"
    default = attrs.get(TAG_FAIL, "interrupted")
    header = ("study", "trial", "seed")
    runs = client.search_runs(filter_string=f"tags.`{TAG_ROLE}` = 'trial' and x = 'study'")
    column = Column("design_point", "design point")
    row = Row("design_point")
'''


def test_the_check_reports_each_kind_of_spelled_out_name() -> None:
    found = {(f.line, f.text) for f in check_source(SYNTHETIC, "synthetic.py")}
    assert found == {
        (6, "sasa.role"),  # a tag literal
        (7, "study"), (7, "sasa.custom_thing"),  # a role value under TAG_ROLE; a tag-like key records lacks
        (8, "sampled"), (9, "sampled"),  # a value next to a records key; compared with one
        (11, "test/acc"),  # a metric name
        (12, "sasa.design."), (13, "best/"),  # f-strings building a tag and a metric from persisted prefixes
        (17, "trial"),  # a role value in an MLflow search on TAG_ROLE (not the unrelated x = 'study')
        (19, "design_point"),  # an attribute name anywhere but as a report column's name
    }, found
    # Not reported: the docstring, prose f-strings, a .get default, everyday words in a header, "trial" as an
    # argument of set_tag without a records key, a report column's name (the first argument of Column).


def test_the_check_reports_file_line_and_string() -> None:
    (finding,) = check_source('TAGS = {"x": "sasa.role"}\n', "platform/example.py")
    assert str(finding) == "platform/example.py:1: 'sasa.role' (records.TAG_ROLE)"


@pytest.mark.parametrize("name", ["sasa.role", "mlflow.parentRunId"])
def test_the_tag_names_are_the_persisted_contract(name: str) -> None:
    """The run tags that readers outside this code (the MLflow UI's filters, users' searches) rely on."""
    assert name in persisted_names()
