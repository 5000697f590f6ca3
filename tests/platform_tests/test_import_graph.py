"""The import graph of ``platform/``, ``dashboards/`` and ``sasa/`` (from the source, see import_graph.py):
no cycles, ``sasa`` imports nothing of the platform, few levels inside ``platform/``, and no first-party import
hidden inside a function (late imports only for heavy third-party modules, each with a comment)."""

from __future__ import annotations

from tests.platform_tests.import_graph import build_graph, cycles, module_levels, unit_levels

# 1 records, data, stores; 2 spec (it reads the logged metric names from records); 3 search, training, reports;
# 4 study, promote; 5 api; 6 the package's __init__.
MAX_UNIT_LEVELS = 5
# Longest chain of module imports inside platform/ (package __init__s count as modules): 16 before the chains
# were cut (2026-11-27), now 10, e.g. platform/__init__ → api → promote.promotion → registry → champion → search →
# spec.study_spec → compose → reader → errors. The concept layers above are the design; this bound keeps the
# module chains from growing back. Inside spec/ the modules are layered 1-4 (+ its __init__).
MAX_MODULE_LEVELS = 10
MAX_SPEC_LEVELS = 5
# What ``sasa`` (a pure PyTorch library) must never import: the platform under either name, the dashboards, and
# the training/search/tracking stack.
# Files stay small and named for what they hold: no module of the three packages grows past this.
MAX_MODULE_LINES = 350
FORBIDDEN_IN_SASA = ("platform", "sasa_lab", "dashboards", "lightning", "optuna", "mlflow", "pytorch_lightning")


def test_graph_sees_the_relative_and_name_dependent_imports() -> None:
    graph = build_graph()
    # A relative import inside a subpackage, both branches of the command's bridge (absolute imports under both
    # names), the platform's bridge to the dashboards, and the package __init__s entered from outside.
    assert "platform.records" in graph.edges["platform.study.lifecycle"]
    assert {"platform.records", "platform.stores", "platform.spec", "platform.reports.load"} <= graph.edges[
        "dashboards.lab"]
    assert {"platform", "platform.reports"} <= graph.edges["dashboards.lab"]  # their __init__s run first
    assert {"dashboards.report", "dashboards.data", "dashboards"} <= graph.edges["platform.reports.views"]
    assert "platform.api" in graph.edges["platform"]


def test_no_import_cycles() -> None:
    found = cycles(build_graph())
    assert not found, f"import cycles: {found}"


def test_sasa_imports_nothing_of_the_platform() -> None:
    graph = build_graph()
    bad = {m: sorted(t for t in graph.edges[m] if not t.startswith("sasa")) for m in graph.imports_of("sasa")}
    assert not {m: t for m, t in bad.items() if t}, bad
    for module in graph.imports_of("sasa"):
        text = graph.modules[module].read_text(encoding="utf-8")
        for name in FORBIDDEN_IN_SASA:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{module} imports {name}"


def test_platform_units_are_layered() -> None:
    levels = unit_levels(build_graph())
    assert levels["records"] == 1, "records.py must stay at the bottom"
    assert max(levels.values()) <= MAX_UNIT_LEVELS, levels


def test_module_chains_stay_short() -> None:
    graph = build_graph()
    levels = module_levels(graph, "platform")
    assert max(levels.values()) <= MAX_MODULE_LEVELS, sorted(levels.items(), key=lambda kv: -kv[1])[:5]
    spec = module_levels(graph, "platform.spec")
    assert max(spec.values()) <= MAX_SPEC_LEVELS, spec
    assert levels["platform.records"] == 1 and levels["platform.spec.errors"] == 1


def test_no_late_first_party_import_and_every_late_import_is_explained() -> None:
    """In ``platform/`` and ``dashboards/`` (``sasa`` loads its optional Triton kernels on first use)."""
    graph = build_graph()
    late = {m: items for m, items in graph.late.items() if m.split(".")[0] in ("platform", "dashboards")}
    first_party = [(m, line, name) for m, items in late.items() for line, name, _ in items
                   if name.split(".")[0] in ("platform", "sasa_lab", "dashboards", "sasa")]
    assert not first_party, f"first-party imports inside functions (dodging a cycle?): {first_party}"
    unexplained = [(m, line, name) for m, items in late.items() for line, name, noted in items if not noted]
    assert not unexplained, f"late imports without a comment saying why: {unexplained}"


def test_modules_stay_under_the_size_limit() -> None:
    graph = build_graph()
    sizes = {m: len(path.read_text(encoding="utf-8").splitlines()) for m, path in graph.modules.items()}
    assert {m.split(".")[0] for m in sizes} >= {"platform", "dashboards", "sasa"}
    too_long = {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {too_long}"
