"""The report's presentation: the table fits a 1280-px window (headers wrap, a wider table scrolls in its own
box), spec values read as YAML, and curve plots of 1-epoch studies have a sane epoch axis."""

from __future__ import annotations

import re

from dashboards.data import Curve, PointData, StudyData, StudyInfo
from dashboards.html import render_report
from dashboards.plots import curves_figure
from dashboards.report import build_report


def _study(epochs: list[int]) -> StudyData:
    spec = {"search": {"design": "grid", "parameters": {"window_size": [3, 5, 7]}, "seeds": {"min": 2, "max": 4},
                       "effect": 0.02, "reference": {"window_size": 7}},
            "objective": {"metric": "val/acc", "direction": "maximize"}}
    info = StudyInfo(name="layout", design="grid", metric="val/acc", direction="maximize", second=None,
                     parameters={"window_size": {"values": [3, 5, 7]}}, reference={"window_size": 7},
                     seeds={"min": 2, "max": 4}, model_name="resnet26", description="layout test",
                     parent_run_id=None, spec=spec)
    points = [PointData(key=f"window_size={k}", level={"window_size": str(k)}, raw_level={"window_size": k},
                        values={0: 0.9 + k / 100, 1: 0.91 + k / 100}, n_complete=2, params=100_000 + k,
                        flops=2_000_000 + k, throughput=100.0, test_acc=0.9) for k in (3, 5, 7)]
    curves = [Curve(key=p.key, epochs=epochs, mean=[0.9] * len(epochs), low=[0.88] * len(epochs),
                    high=[0.92] * len(epochs), n_seeds=2) for p in points]
    return StudyData(info=info, points=points, counts={"complete": 6}, curves=curves)


def test_spec_values_read_as_yaml_not_python() -> None:
    html = render_report(build_report(_study([0, 1, 2])))
    assert "{min: 2, max: 4}" in html
    assert "{&#x27;min&#x27;" not in html and "{'min'" not in html


def test_tables_scroll_inside_their_box_and_headers_wrap() -> None:
    html = render_report(build_report(_study([0, 1, 2])))
    tables = html.count("<table>")
    assert tables >= 1 and html.count('<div class="table-wrap"><table>') == tables
    css = html[html.index("<style>"):html.index("</style>")]
    assert re.search(r"\.table-wrap \{[^}]*overflow-x: auto", css)
    assert re.search(r"th \{[^}]*white-space: normal", css)


def test_one_epoch_curves_have_a_whole_epoch_axis() -> None:
    study = _study([0])
    fig = curves_figure([(c.key, c.epochs, c.mean, c.low, c.high) for c in study.curves], metric="val/acc")
    low, high = fig.axes[0].get_xlim()
    assert low <= -0.4 and high >= 0.4 and high - low <= 1.5, (low, high)  # not −0.045..0.045
    ticks = [t for t in fig.axes[0].get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks)
    several = curves_figure([("a", [0, 1, 2], [0.5, 0.6, 0.7], [0.4] * 3, [0.8] * 3)], metric="val/acc")
    assert several.axes[0].get_xlim() == (-0.5, 2.5)
