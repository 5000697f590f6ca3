"""The HTML report in a 1280-px browser window (headless Chromium): the page never scrolls sideways and every
column of the ablation table is there — headers wrap, and a table still too wide scrolls inside its own box."""

from __future__ import annotations

from pathlib import Path

from dashboards.html import render_report
from dashboards.report import build_report, table_header
from tests.dashboards_tests.test_report_layout import _study
from tests.ui_tests.browser import browser_paths, chromium


def test_report_table_fits_a_1280_px_window(tmp_path: Path) -> None:
    browser_paths()
    report = build_report(_study([0]))
    page = tmp_path / "report.html"
    page.write_text(render_report(report), encoding="utf-8")
    with chromium(tmp_path / "profile") as driver:
        driver.set_window_size(1280, 900)
        driver.get(page.as_uri())
        width = driver.execute_script("return window.innerWidth")
        assert width <= 1280
        page_width = driver.execute_script("return document.documentElement.scrollWidth")
        assert page_width <= width, f"the page scrolls sideways: {page_width} > {width}"
        boxes = driver.execute_script(
            "return [...document.querySelectorAll('.table-wrap')].map(b => b.getBoundingClientRect().right)")
        assert boxes and max(boxes) <= width
        headers = driver.execute_script(
            "return [...document.querySelector('.table-wrap table').querySelectorAll('th')].map(t => t.textContent)")
        assert headers == table_header(report)
        # Headers wrap instead of widening their columns: no header is wider than its longest word needs.
        clipped = driver.execute_script(
            "return [...document.querySelectorAll('th')].filter(t => t.scrollWidth > t.clientWidth + 1).length")
        assert clipped == 0
