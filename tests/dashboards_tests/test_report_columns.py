"""Every form of the ablation table, pinned byte for byte: table.md, table.csv, report.html, the terminal summary
(three layouts), the parent run's ``table/`` and ``report/`` metrics and its ``ablation_table.json`` rows and
markdown description. The files under ``golden/`` were written by the code before the report columns became one
list (``dashboards/columns.py``), then rewritten once when the report's answer columns moved to the front and the
verdicts' legend was added (issue 25), and once more when the best-mean line gained its sentence on the cheaper
design points (issue 24: effect.table.md, effect.report.html); ``SASA_REGEN_GOLDEN=1`` rewrites them.

Then: a column added to that list in a test shows in table.md, table.csv and report.html (one entry, nothing else).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from dashboards import columns
from dashboards.data import PointData, StudyInfo
from dashboards.html import render_report
from dashboards.report import Report, build_table, table_csv, table_markdown
from dashboards.verdicts import Verdict
from platform.reports.publish import report_metrics
from platform.study.notes import table_markdown as note_markdown
from platform.study.notes import table_rows as note_rows
from platform.study.summary import PointSummary, render_summary
from platform.study.tracking import table_metrics

GOLDEN = Path(__file__).parent / "golden"
KS = (3, 5, 7, 9)


def _info(effect: float | None) -> StudyInfo:
    search = {"design": "grid", "parameters": {"window_size": {"type": "categorical", "choices": list(KS)}},
              "seeds": [0, 1, 2], "reference": {"window_size": 7}}
    if effect is not None:
        search["effect"] = effect
    return StudyInfo(name="pin", design="grid", metric="val/acc", direction="maximize", second=None,
                     parameters=dict(search["parameters"]), reference={"window_size": 7}, seeds=[0, 1, 2],
                     model_name="resnet26", description="pinned", parent_run_id=None,
                     spec={"search": search, "objective": {"metric": "val/acc", "direction": "maximize"}},
                     reference_levels={"window_size": "7"})


def _points() -> list[PointData]:
    out = []
    for i, k in enumerate(KS):
        values = {s: 0.8 + k / 100 + s / 1000 + (i % 2) / 500 for s in range(3)}
        pruned = k == 9
        out.append(PointData(key=f"window_size={k}", level={"window_size": str(k)}, raw_level={"window_size": k},
                             values={} if pruned else values, n_complete=0 if pruned else 3, n_pruned=int(pruned),
                             n_failed=int(k == 3), params=1_234_567 * k, flops=98_765_432 * k,
                             throughput=None if k == 5 else 1234.5 / k, test_acc=None if k == 5 else 0.7 + k / 50,
                             pruned_at=2 if pruned else None))
    return out


def _report(effect: float | None) -> Report:
    info = _info(effect)
    rows, note = build_table(_points(), info)
    return Report(info=info, rows=rows, test="ttest", reference_note=note,
                  counts={"complete": 9, "pruned": 1, "failed": 1}, generated="2026-01-01 00:00:00")


def _summary() -> tuple[list[PointSummary], dict[str, Verdict]]:
    rows = [PointSummary(key=p.key, values=tuple(p.values.values()), n_complete=p.n_complete, n_pruned=p.n_pruned,
                         n_failed=p.n_failed, params=p.params, flops=p.flops) for p in _points()]
    rows.append(PointSummary(key="window_size=11", values=(), n_complete=0, n_pruned=0, n_failed=0, params=None,
                             flops=None))
    found = {"window_size=3": Verdict("window_size=3", "window_size=7", "worse", "ttest", -0.042, -0.05, -0.03,
                                      0.001, 0.01, None, None, 3, None, True),
             "window_size=5": Verdict("window_size=5", "window_size=7", "undecided", None, -0.018, None, None,
                                      0.2, 0.01, 0.3, 0.05, 3, 12, False)}
    return rows, found


def _terminal(width: int, with_verdicts: bool) -> str:
    rows, found = _summary()
    console = Console(width=width, record=True, color_system=None)
    render_summary(rows, metric="val/acc", direction="maximize", console=console,
                   found=found if with_verdicts else None, effect=0.02)
    return console.export_text()


def _outputs() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, effect in (("plain", None), ("effect", 0.02)):
        report = _report(effect)
        out[f"{name}.table.md"] = table_markdown(report)
        out[f"{name}.table.csv"] = table_csv(report)
        out[f"{name}.report.html"] = render_report(report)
        metrics, tags = report_metrics(report)
        mlflow = {"metrics": metrics, "tags": tags}
        out[f"{name}.report-metrics.json"] = json.dumps(mlflow, indent=1, sort_keys=True) + "\n"
    for width in (200, 80, 40):
        out[f"summary-{width}.txt"] = _terminal(width, True)
    out["summary-plain-200.txt"] = _terminal(200, False)
    rows, found = _summary()
    for name, given in (("verdicts", found), ("plain", {})):
        out[f"ablation_table-{name}.json"] = json.dumps(note_rows(rows, given, "val/acc"), indent=1) + "\n"
        out[f"note-{name}.md"] = note_markdown(rows, given, metric="val/acc", direction="maximize",
                                               report="`report.html`", effect=0.02 if given else None) + "\n"
    out["table-metrics.json"] = json.dumps(table_metrics(rows), indent=1, sort_keys=True) + "\n"
    return out


@pytest.mark.parametrize("name", sorted(_outputs()))
def test_table_forms_are_unchanged(name: str) -> None:
    text = _outputs()[name]
    path = GOLDEN / name
    if os.environ.get("SASA_REGEN_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), name


def test_a_new_column_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """One Column added to the list shows in table.md, table.csv, report.html, the terminal summary, the parent
    run's description, ablation_table.json and both metric forms; nothing else changes."""
    seeds = columns.Column("seeds_seen", "seeds seen", lambda r, c: f"{r.summary.n} seeds",
                           lambda r, c: r.summary.n)
    monkeypatch.setattr(columns, "COLUMNS", [*columns.COLUMNS, seeds])
    report = _report(None)
    markdown = table_markdown(report).splitlines()
    assert markdown[0].endswith("| p | seeds seen |")
    assert markdown[2].endswith("| 3 seeds |") and markdown[5].endswith("| 0 seeds |")
    csv_lines = table_csv(report).splitlines()
    assert csv_lines[0].endswith(",pruned_at_epoch,seeds_seen") and csv_lines[1].endswith(",3")
    html = render_report(report)
    assert "<th>seeds seen</th></tr>" in html and "<td>3 seeds</td></tr>" in html
    # The verdict column is still the one coloured, found by its object, not its header or position.
    assert '<td class="v-reference">reference</td>' in html
    metrics, _ = report_metrics(report)
    assert metrics["report/window_size_3/seeds_seen"] == 3.0
    terminal = _terminal(200, True)
    assert "seeds seen" in terminal and "3 seeds" in terminal
    rows, found = _summary()
    assert note_rows(rows, found, "val/acc")[0]["seeds_seen"] == 3
    assert "| seeds seen |" in note_markdown(rows, found, metric="val/acc", direction="maximize", report=None)
    assert table_metrics(rows)["table/window_size:3/seeds_seen"] == 3.0
    # Removing it again gives back the pinned bytes.
    monkeypatch.undo()
    assert table_markdown(_report(None)) == (GOLDEN / "plain.table.md").read_text(encoding="utf-8")


def test_a_text_only_column_stays_out_of_the_value_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    note = columns.Column("remark", "remark", lambda r, c: "ok", outputs=columns.REPORT | {columns.CSV})
    monkeypatch.setattr(columns, "COLUMNS", [*columns.COLUMNS, note])
    report = _report(None)
    assert table_markdown(report).splitlines()[2].endswith("| ok |")
    assert table_csv(report) == (GOLDEN / "plain.table.csv").read_text(encoding="utf-8")  # no value: no CSV column


def test_no_two_columns_of_an_output_share_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """table.csv and the metrics key a row's values by column name: a repeated name would drop a cell."""
    for output in columns.EVERY:
        names = [c.name("val/acc") for c in columns.valued(output)]
        assert len(names) == len(set(names)), (output, names)
    again = columns.Column("n_seeds", "", None, lambda r, c: 0, frozenset({columns.CSV}))
    monkeypatch.setattr(columns, "COLUMNS", [*columns.COLUMNS, again])
    with pytest.raises(ValueError, match="share a name: \\['n_seeds'\\]"):
        table_csv(_report(None))
