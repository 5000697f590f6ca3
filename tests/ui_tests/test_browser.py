"""Seen as a person sees it: a real tiny study, its report, and the MLflow UI in headless Chromium.

A study runs through the CLI, ``python -m dashboards`` writes its report and logs it to the parent MLflow run, a
real ``mlflow server`` serves the tracking database on loopback, and Chromium (driven by Selenium through the
system chromedriver) opens: the experiment's runs (parent and nested children), the parent run's artifacts
(``report/report.html``), and the report itself over HTTP, which must load with no console error. Screenshots
go to ``test-artifacts/ui/`` (git-ignored) for the docs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from selenium.common.exceptions import ElementClickInterceptedException

from platform.records import (
    EXPERIMENT_KIND_TRAINING,
    PARENT_METRIC_PREFIX,
    ROLE_STUDY,
    ROLE_TRIAL,
    SOURCE_NAME,
    TAG_EXPERIMENT_KIND,
    TAG_NOTE,
    TAG_POINT,
    TAG_ROLE,
    TRAINING_VIEW_QUERY,
)
from tests.platform_tests.studyrun import REPO, env, run_study, stores, tiny_spec, write_spec
from tests.support.limits import HANG_S
from tests.support.servers import mlflow_server, static_server
from tests.ui_tests.browser import browser_paths, chromium, console_errors, wait_for_text

STUDY = "uitiny"
SCREENSHOTS = REPO / "test-artifacts" / "ui"
# MLflow 3.17's UI asks a server without authentication for the current user and gets a 404: MLflow's own
# request, present on every page of an empty server too, not caused by our data.
KNOWN_MLFLOW_UI_ERRORS = ("/ajax-api/2.0/mlflow/users/current",)
RUN_NAME_EXPANDER = 'button[data-component-id*="runnamecellrenderer"]'  # the +/- of a parent row (MLflow 3.17)
ASSISTANT_CLOSE = 'button[data-component-id="mlflow.assistant.chat_panel.close"]'


@pytest.fixture(scope="module")
def reported_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    browser_paths()  # fail at once, with how to install, before spending a minute on the study
    tmp = tmp_path_factory.mktemp("ui")
    spec = write_spec(tmp / f"{STUDY}.yaml", tiny_spec(STUDY, search={"seeds": [0]}))
    result = run_study(spec, tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    report = subprocess.run(
        [sys.executable, "-m", "dashboards", STUDY, "--runs-dir", str(tmp / "runs"), "--out", str(tmp / "report")],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=HANG_S,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert (tmp / "report" / "report.html").is_file()
    return tmp


def _unexpected(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(known in e for known in KNOWN_MLFLOW_UI_ERRORS)]


def _click(driver, element) -> None:
    """A user's click; through JavaScript when a transient overlay (a toast, a tooltip, the page still laying
    out) would take it, which Chromium reports as an intercepted click."""
    try:
        element.click()
    except ElementClickInterceptedException:
        driver.execute_script("arguments[0].click();", element)


def _close_assistant(driver) -> None:
    """Close MLflow 3.17's assistant chat panel where it opens, so it does not cover the runs table."""
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, ASSISTANT_CLOSE):
        if button.is_displayed():
            _click(driver, button)


def _screenshot(driver, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if full_page:  # grow the window to the page so the PNG holds all of it
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1440, max(900, min(int(height) + 40, 8000)))
    path = SCREENSHOTS / name
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000  # a real picture, not an empty canvas
    return path


def test_mlflow_ui_and_report_in_a_real_browser(reported_study: Path) -> None:
    tmp = reported_study
    tracking = stores(tmp)[1]
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_STUDY]
    children = sorted(r.info.run_name for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_TRIAL)
    assert len(children) == 2
    assert "report/report.html" in [a.path for a in client.list_artifacts(parent.info.run_id, "report")]

    from selenium.webdriver.common.by import By

    with (
        mlflow_server(tracking, tmp / "runs" / "mlartifacts", tmp / "mlflow-server.log") as mlflow_url,
        static_server(tmp / "report", tmp / "static-server.log") as report_url,
        chromium(tmp / "chromium-profile") as driver,
    ):
        # The experiment's runs: the parent row, expanded to show its nested child runs by name.
        driver.get(f"{mlflow_url}/#/experiments/{experiment.experiment_id}/runs")
        wait_for_text(driver, [STUDY, "Run Name"])
        _close_assistant(driver)
        expanders = driver.find_elements(By.CSS_SELECTOR, RUN_NAME_EXPANDER)
        assert expanders, "the parent run has no expand button: are the child runs nested under it?"
        _click(driver, expanders[0])
        wait_for_text(driver, [STUDY, *children])
        _screenshot(driver, "mlflow-runs.png")
        assert not _unexpected(console_errors(driver))

        # The parent run's artifacts: the report folder with report.html, previewed by MLflow.
        driver.get(f"{mlflow_url}/#/experiments/{experiment.experiment_id}/runs/{parent.info.run_id}/artifacts/"
                   "report/report.html")
        wait_for_text(driver, ["Artifacts", "report", "report.html", "spec.yaml", "report/report.html"])
        _screenshot(driver, "mlflow-report-artifact.png")
        assert not _unexpected(console_errors(driver))

        # The report itself over HTTP: it renders (title, table, every figure decoded) with no console error.
        driver.get(f"{report_url}/report.html")
        body = wait_for_text(driver, [STUDY, "window_size=3", "window_size=5"])
        assert "Traceback" not in body
        state = driver.execute_script(
            "return {ready: document.readyState, tables: document.querySelectorAll('table').length,"
            " images: Array.from(document.images).map(i => i.complete && i.naturalWidth > 0),"
            " favicon: !!document.querySelector('link[rel~=icon]')}"
        )
        assert state["ready"] == "complete" and state["tables"] >= 1
        assert state["images"] and all(state["images"]), state["images"]
        errors = console_errors(driver)
        if not state["favicon"]:  # the browser's own /favicon.ico probe, not a request the page makes
            errors = [e for e in errors if "/favicon.ico" not in e]
        assert not errors, errors
        _screenshot(driver, "report.png", full_page=True)


GROUP_BY_BUTTON = 'button[data-component-id*="experimentviewrunsgroupbyselector"]'


def test_mlflow_training_view_shows_dataset_source_and_groups_by_design_point(reported_study: Path) -> None:
    """The URL the study prints opens the model-training view (not MLflow 3's GenAI default), whose runs table
    shows each child's Dataset and Source; grouping by the ``sasa.design_point`` tag puts each design point's
    seeds under one group; the parent run holds the ablation table's numbers as metrics."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from platform.study.tracking import experiment_url

    tmp = reported_study
    tracking = stores(tmp)[1]
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name(STUDY)
    assert experiment.tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND_TRAINING
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_STUDY]
    children = [r for r in runs if r.data.tags.get(TAG_ROLE) == ROLE_TRIAL]
    points = sorted(r.data.tags[TAG_POINT] for r in children)
    assert points == ["window_size=3", "window_size=5"]
    for point in points:  # the end-of-study table on the parent run, one metric per design point
        assert f"{PARENT_METRIC_PREFIX}{point.replace('=', ':')}/mean" in parent.data.metrics

    with (
        mlflow_server(tracking, tmp / "runs" / "mlartifacts", tmp / "mlflow-server-2.log") as mlflow_url,
        chromium(tmp / "chromium-profile-2") as driver,
    ):
        driver.get(experiment_url(experiment.experiment_id, mlflow_url))
        wait_for_text(driver, [STUDY, "Model training", "Run Name", "Dataset", "Source"])
        assert TRAINING_VIEW_QUERY in driver.current_url
        _close_assistant(driver)
        _click(driver, driver.find_elements(By.CSS_SELECTOR, RUN_NAME_EXPANDER)[0])
        names = [r.info.run_name for r in children]
        body = wait_for_text(driver, [*names, "digits (", SOURCE_NAME])
        assert body.count("digits (") == len(children)  # the Dataset column: one dataset input per child run
        assert body.count(SOURCE_NAME) == len(runs)  # the Source column: every run
        _screenshot(driver, "mlflow-training-view.png")
        assert not _unexpected(console_errors(driver))

        _click(driver, driver.find_element(By.CSS_SELECTOR, GROUP_BY_BUTTON))
        wait_for_text(driver, [TAG_POINT])
        _click(driver, driver.find_element(By.XPATH, f"//*[text()='{TAG_POINT}']"))
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        wait_for_text(driver, [f"Group by: {TAG_POINT}", *(f"Group: {p}" for p in points), *names])
        _screenshot(driver, "mlflow-grouped-by-design-point.png")
        assert not _unexpected(console_errors(driver))


def test_experiments_list_opens_the_view_of_the_sidebar_switch(reported_study: Path) -> None:
    """What docs/mlflow.md says of MLflow 3.17: a click in the experiments list opens the view of the sidebar's
    workflow switch (GenAI in a fresh browser, whatever the experiment's ``mlflow.experimentKind`` tag says); once
    the switch is on *Model training* the browser keeps it and the same click opens the runs."""
    from selenium.webdriver.common.by import By

    tmp = reported_study
    tracking = stores(tmp)[1]
    experiment = MlflowClient(tracking_uri=tracking).get_experiment_by_name(STUDY)
    assert experiment.tags[TAG_NOTE].startswith(f"**{STUDY}**")  # the description from the spec

    def open_from_list(driver, base: str) -> str:
        driver.get(f"{base}/#/experiments")
        wait_for_text(driver, [STUDY])
        link = next(a for a in driver.find_elements(By.CSS_SELECTOR, 'a[data-testid="experiment-list-item-link"]')
                    if a.get_attribute("title") == STUDY)
        _click(driver, link)
        deadline = time.monotonic() + 60
        while "workflowType=" not in driver.current_url and time.monotonic() < deadline:
            time.sleep(0.2)
        return driver.current_url

    with (
        mlflow_server(tracking, tmp / "runs" / "mlartifacts", tmp / "mlflow-server-3.log") as mlflow_url,
        chromium(tmp / "chromium-profile-3") as driver,
    ):
        first = open_from_list(driver, mlflow_url)
        assert f"/experiments/{experiment.experiment_id}/" in first and "workflowType=genai" in first, first
        _close_assistant(driver)
        switch = [e for e in driver.find_elements(By.CSS_SELECTOR, '[role="button"]')
                  if e.is_displayed() and e.text.strip() == "Model training"]
        assert switch, "no 'Model training' side of the sidebar's workflow switch"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", switch[0])
        _click(driver, switch[0])
        then = open_from_list(driver, mlflow_url)
        assert TRAINING_VIEW_QUERY in then and "/runs" in then, then
        assert not _unexpected(console_errors(driver))
