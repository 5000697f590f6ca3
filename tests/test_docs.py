"""Documentation checks: README length, relative links and anchors, a table of contents in every docs file.

Anchors follow GitHub's heading slugs: lower-case, punctuation dropped (letters, digits, ``_``, ``-`` and spaces
kept), spaces turned into ``-``, and ``-1``, ``-2``, … appended to repeated slugs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading text (markdown links reduced to their text, code spans to their content)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> list[tuple[int, str]]:
    """(level, text) of every heading outside code blocks."""
    return [(len(m.group(1)), m.group(2)) for line in _prose_lines(path.read_text(encoding="utf-8"))
            if (m := _HEADING.match(line))]


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, text in headings(path):
        base = slug(text)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def relative_links(path: Path) -> list[str]:
    """Link targets that are not URLs (http, https, mailto), outside code blocks and code spans."""
    targets = []
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        for target in _LINK.findall(_CODE_SPAN.sub("", line)):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                targets.append(target)
    return targets


def doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_slug_matches_github_rules() -> None:
    assert slug("`storage`, `tracking`") == "storage-tracking"
    assert slug("Overrides (`--set`)") == "overrides---set"
    assert slug("`create_model(name, num_classes, **options)`") == "create_modelname-num_classes-options"
    assert slug("1. PostgreSQL for Optuna (once)") == "1-postgresql-for-optuna-once"


def test_readme_is_at_most_250_lines() -> None:
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_README_LINES, f"README.md has {count} lines; move reference material into docs/"


def test_docs_folder_has_markdown() -> None:
    assert doc_files(), "docs/ holds no .md files"


def link_problems(path: Path) -> list[str]:
    """One line per relative link of ``path`` whose file or ``#anchor`` does not exist."""
    problems = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: {linked} is missing")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return problems


def test_link_checker_reports_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# B\n\n## Yes\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text("# A\n\n## One\n\n[ok](#one) [ok](b.md#yes) [bad](b.md#no) [gone](c.md) [self](#two)\n"
                    "`[code](d.md)`\n```\n[fenced](e.md)\n```\n", encoding="utf-8")
    problems = link_problems(page)
    assert [p.split(":")[0] for p in problems] == ["b.md#no", "c.md", "#two"]


@pytest.mark.parametrize("path", [README, *doc_files()], ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    problems = link_problems(path)
    assert not problems, f"{path.name}: broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_docs_file_starts_with_a_table_of_contents(path: Path) -> None:
    """A title, then (before the first section) a link to every ``##`` section of the file."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines and lines[0].startswith("# "), f"{path.name} must start with a '# ' title"
    sections = [text_ for level, text_ in headings(path) if level == 2]
    assert sections, f"{path.name} has no '##' sections"
    first = next(i for i, line in enumerate(lines) if line.startswith("## "))
    preamble = "\n".join(lines[:first])
    missing = [s for s in sections if f"](#{slug(s)})" not in preamble]
    assert not missing, f"{path.name}: the table of contents lacks links to: {missing}"


# --- every figure in docs/benchmarks.md comes from a results file ------------------------------------------------

BENCHMARKS_DOC = DOCS / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
# A measured figure: a decimal number, or a number with a unit of time, memory, speed, ratio or share.
_UNIT = r"(?=\s*(?:×|%|ms\b|MiB\b|MB\b|GiB\b|s\b|images/s))"
_FIGURE = re.compile(r"(?<![\w.\-/])(\d[\d,]*\.\d+(?:e-?\d+)?(?![\d.])|\d[\d,]*(?:e-?\d+)?(?![\d.,])" + _UNIT + ")")
_DECIMAL = re.compile(r"(?<![\w.\-/])\d[\d,]*\.\d+(?:e-?\d+)?(?![\w.])|(?<![\w.\-/])\d[\d,]*(?:\.\d+)?(?:e-?\d+)?")


def _figures(text: str) -> list[str]:
    """Measured figures in the prose and tables of a markdown file (code blocks and code spans left out)."""
    found = []
    for line in _prose_lines(text):
        line = _CODE_SPAN.sub("", re.sub(r"\]\([^)]*\)", "]", line))  # link targets and commands are not figures
        line = re.sub(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?:[–-]\d{2}:\d{2})?)?", "", line)  # dates and times
        found += [m.group(1) for m in _FIGURE.finditer(line)]
    return found


def _value(token: str) -> float:
    return float(token.replace(",", ""))


def _traced(token: str, results: list[str]) -> bool:
    """Does a results file hold this figure? A decimal figure must appear as written (1.9e-6 may be written 1.9e-06
    there); a whole number may be a results value rounded to units (82 ms for 82.2)."""
    value = _value(token)
    if "e" in token:
        return any(abs(_value(r) - value) <= 1e-12 for r in results if "e" in r)
    if "." in token:
        return any(r.replace(",", "") == token.replace(",", "") for r in results)
    return any(round(_value(r)) == value for r in results if "e" not in r)


def test_every_figure_in_benchmarks_doc_is_in_a_results_file() -> None:
    results_text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(RESULTS.glob("*.md")))
    results = [m.group(0) for m in _DECIMAL.finditer(results_text)]
    missing = sorted({t for t in _figures(BENCHMARKS_DOC.read_text(encoding="utf-8")) if not _traced(t, results)},
                     key=_value)
    assert not missing, f"figures in docs/benchmarks.md found in no benchmarks/results/* file: {missing}"


def test_every_benchmarks_section_names_its_results_file_and_command() -> None:
    text = BENCHMARKS_DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    for section in sections:
        title = section.splitlines()[0]
        if title in ("Machines", "Whole studies"):
            continue
        files = re.findall(r"benchmarks/results/([\w.]+)", section)
        assert files, f"section '{title}' names no benchmarks/results/ file"
        for name in files:
            assert (RESULTS / name).is_file(), f"section '{title}': benchmarks/results/{name} does not exist"
        assert re.search(r"`(?:python -m benchmarks\.\w+|bash benchmarks/\w+\.sh)[^`]*`", section), title


def test_figure_check_catches_an_untraced_number() -> None:
    results = ["82.2", "1.9e-06", "8.8", "727.0", "5.28"]
    assert _traced("82", results) and _traced("8.8", results) and _traced("1.9e-6", results)
    assert not _traced("5.3", results) and not _traced("3.1e-2", results)
    assert _figures("a 5.3× ratio, 82 ms, 2 cores, `--steps 5`, on 2026-11-22, k = 7") == ["5.3", "82"]
