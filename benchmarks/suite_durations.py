"""Where the test suite's time goes: ``python -m benchmarks.suite_durations JUNIT.xml [--out FILE] [--note TEXT]``.

Reads the JUnit XML that ``python -m pytest --junitxml=JUNIT.xml`` writes (per-test times, set-up and tear-down of
fixtures included in the test that ran them) and the tier of each test (``slow``-marked tests are left out of
``make test-fast``: the list is read back by collecting with ``-m slow``), and writes a Markdown table: the whole
run, each tier, each test folder, and the slowest tests. Results go to ``benchmarks/results/suite_durations.md``;
docs/testing.md quotes it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "suite_durations.md"
SLOWEST = 30


@dataclass(frozen=True)
class TestTime:
    node: str  # tests/x/test_y.py::test_z[param]
    seconds: float
    outcome: str  # passed | failed | error | skipped


def _node(case: ET.Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "")
    parts = classname.split(".")
    # classname is the dotted module path, then classes; the module is the longest prefix that is a file
    for cut in range(len(parts), 0, -1):
        path = Path(*parts[:cut]).with_suffix(".py")
        if (REPO / path).is_file():
            return "::".join([path.as_posix(), *parts[cut:], name])
    return f"{classname}::{name}"


def read_junit(path: Path) -> list[TestTime]:
    times = []
    for case in ET.parse(path).iter("testcase"):
        outcome = "passed"
        for child, label in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            if case.find(child) is not None:
                outcome = label
        times.append(TestTime(_node(case), float(case.get("time", 0.0)), outcome))
    return times


def slow_nodes() -> set[str]:
    """Node ids of the ``slow`` tier, as pytest collects them now (``-m slow --collect-only``)."""
    listing = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "slow", "-p",
                              "no:cacheprovider"], cwd=REPO, capture_output=True, text=True, check=False).stdout
    return {line.strip() for line in listing.splitlines() if "::" in line}


def _folder(node: str) -> str:
    parts = node.split("::")[0].split("/")
    return "/".join(parts[:2]) + "/" if len(parts) > 2 else parts[0]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def table(times: list[TestTime], slow: set[str], *, note: str) -> str:
    total = sum(t.seconds for t in times)
    tiers: dict[str, list[TestTime]] = {"fast (make test-fast)": [], "slow": []}
    folders: dict[str, list[TestTime]] = defaultdict(list)
    for t in times:
        tiers["slow" if t.node in slow else "fast (make test-fast)"].append(t)
        folders[_folder(t.node)].append(t)
    outcomes = defaultdict(int)
    for t in times:
        outcomes[t.outcome] += 1
    lines = [
        "# Test durations", "",
        f"{note}", "",
        "Command: `python -m pytest -q --junitxml=junit.xml` then `python -m benchmarks.suite_durations junit.xml`. "
        "Times are per test, fixture set-up and tear-down included in the test that ran them (a module's shared "
        "study is charged to its first test).", "",
        f"{len(times)} tests ({', '.join(f'{n} {k}' for k, n in sorted(outcomes.items()))}), "
        f"{_minutes(total)} of test time in all.", "",
        "| tier | tests | time |", "|---|---|---|",
        *(f"| {name} | {len(group)} | {_minutes(sum(t.seconds for t in group))} |" for name, group in tiers.items()),
        "", "| folder | tests | time |", "|---|---|---|",
        *(f"| `{name}` | {len(group)} | {_minutes(sum(t.seconds for t in group))} |"
          for name, group in sorted(folders.items(), key=lambda kv: -sum(t.seconds for t in kv[1]))),
        "", f"The {SLOWEST} slowest:", "", "| s | tier | test |", "|---|---|---|",
        *(f"| {t.seconds:.1f} | {'slow' if t.node in slow else 'fast'} | `{t.node}` |"
          for t in sorted(times, key=lambda t: -t.seconds)[:SLOWEST]),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite_durations", description=__doc__.split("\n")[0])
    parser.add_argument("junit", type=Path, help="the JUnit XML of a pytest run (--junitxml)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"Markdown file to write (default {RESULTS})")
    parser.add_argument("--note", default="", help="the run: machine, date, load, commit")
    args = parser.parse_args(argv)
    if not args.junit.is_file():
        parser.error(f"junit: no such file {args.junit}; write one with python -m pytest --junitxml=FILE")
    times = read_junit(args.junit)
    if not times:
        parser.error(f"junit: {args.junit} holds no test case")
    args.out.write_text(table(times, slow_nodes(), note=args.note))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
