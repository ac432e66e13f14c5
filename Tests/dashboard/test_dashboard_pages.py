"""The dashboard in a real browser (headless Chromium): what a person sees on the experiments list and on an
experiment's page, after knobd ran a small experiment (conftest.py)."""
import csv
import http.client
import os
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

COMPLETED = {"Succeeded", "EarlyStopped"}


def wait(browser, condition, timeout=20):
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda driver: condition(driver))


def console_errors(browser):
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def open_page(browser, daemon, path):
    """Opens `path` with the token the first time (it sets the cookie), as a person pasting knobd's URL would."""
    browser.get(f"{daemon.url}/?token={daemon.token}")
    browser.get(daemon.url + path)


def table_rows(browser):
    """The cells' text, row by row, read at one moment (the page redraws the table as data arrives)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#trials tbody tr')].map((row) => [...row.cells].map((cell) => cell.innerText))")


def column(browser, title):
    titles = browser.execute_script("return [...document.querySelectorAll('#trials thead th')].map((th) => th.textContent)")
    return titles.index(title)


def get(daemon, path, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def test_the_token_is_required_over_tcp_and_a_token_link_sets_a_strict_httponly_cookie(daemon):
    for path in ("/", "/experiments/dash", "/static/dashboard.js", "/v1/experiments", f"/?token={daemon.token[:-1]}x"):
        response, _ = get(daemon, path)
        assert response.status == 401, path
    response, body = get(daemon, f"/?token={daemon.token}")
    assert response.status == 200 and b"<table id=\"experiments\">" in body
    cookie = response.getheader("Set-Cookie")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes and "samesite=strict" in attributes, cookie
    pair = cookie.split(";")[0]
    assert daemon.token not in pair, "the cookie holds a form of the token, not the token as typed"
    for path in ("/experiments/dash", "/v1/experiments/dash/trials"):
        assert get(daemon, path, {"Cookie": pair})[0].status == 200, path
    assert get(daemon, "/v1/experiments", {"Cookie": pair[:-1]})[0].status == 401


def test_the_experiments_list_shows_the_experiment(browser, daemon, trials, screenshots):
    open_page(browser, daemon, "/")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#experiments tbody tr"))
    cells = browser.execute_script(
        "return [...document.querySelector('#experiments tbody tr').cells].map((cell) => cell.innerText)")
    experiment = daemon.request("GET", "/v1/experiments/dash")[2]
    assert cells[0] == "dash" and cells[1] == experiment["status"] and cells[2] == "grid"
    assert cells[3] == f"{len(trials)} / 8"
    assert float(cells[4]) == min(t["objectiveValue"] for t in trials if t["state"] in COMPLETED) == 0
    assert cells[5], "the start time is shown"
    assert cells[6].endswith("s") or cells[6].endswith("m"), cells
    assert console_errors(browser) == []
    browser.save_screenshot(os.path.join(screenshots, "dashboard-experiments.png"))
    browser.find_element(By.LINK_TEXT, "dash").click()
    wait(browser, lambda d: d.current_url.endswith("/experiments/dash"))


@pytest.fixture
def experiment_page(browser, daemon, trials):
    open_page(browser, daemon, "/experiments/dash")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#trials tbody tr")) == len(trials))
    return browser


def test_the_history_plot_has_a_mark_per_completed_trial_and_the_best_line_ends_at_the_best(experiment_page, daemon, trials, screenshots):
    browser = experiment_page
    completed = sorted((t for t in trials if t["state"] in COMPLETED), key=lambda t: t["sequence"])
    assert len(completed) == 6
    # What Chart.js drew: its point elements, with their places on the canvas.
    best = min(t["objectiveValue"] for t in completed)
    drawn = browser.execute_script("""
        const chart = Chart.getChart(document.getElementById('history'));
        const points = chart.getDatasetMeta(0).data.filter((p) => !p.skip);
        const line = chart.getDatasetMeta(1).data;
        const bestLine = chart.data.datasets[1].data;
        return {marks: points.length, values: chart.data.datasets[0].data.map((p) => p.y),
                lastBest: bestLine[bestLine.length - 1].y, lastBestPixel: line[line.length - 1].y,
                bestPixel: chart.scales.y.getPixelForValue(arguments[0]), lineVisible: chart.isDatasetVisible(1),
                inside: points.every((p) => p.x >= chart.chartArea.left && p.x <= chart.chartArea.right)};
    """, best)
    assert drawn["marks"] == len(completed)
    assert drawn["values"] == [t["objectiveValue"] for t in completed]
    assert drawn["inside"] and drawn["lineVisible"]
    assert drawn["lastBest"] == best and abs(drawn["lastBestPixel"] - drawn["bestPixel"]) < 0.5, drawn
    text = browser.find_element(By.ID, "best").text
    best_trial = next(t for t in completed if t["objectiveValue"] == best)
    assert text.startswith(best_trial["name"]) and "x=5" in text, text
    # The intermediate values: a line per trial that reported, a mark per report.
    reports = daemon.request("GET", "/v1/experiments/dash/metrics")[2]
    expected = {}
    for report in reports:
        expected.setdefault(report["trialName"], []).append(report["value"])
    lines = browser.execute_script("""
        const chart = Chart.getChart(document.getElementById('intermediate'));
        return Object.fromEntries(chart.data.datasets.map((d, i) => [d.label, chart.getDatasetMeta(i).data.map((p, k) => d.data[k].y)]));
    """)
    assert lines == expected and len(lines) == len(completed), lines
    assert console_errors(browser) == []
    browser.save_screenshot(os.path.join(screenshots, "dashboard-experiment.png"))


def test_sorting_and_filtering_change_the_rows(experiment_page, trials):
    browser = experiment_page
    objective = column(browser, "Objective")
    name = column(browser, "Trial")
    header = browser.find_elements(By.CSS_SELECTOR, "#trials thead th")[objective]
    header.click()
    ascending = [row[objective] for row in table_rows(browser)]
    values = [float(v) for v in ascending if v]
    assert values == sorted(values) and values[0] == 0 and len(values) == 6
    assert ascending[-2:] == ["", ""], "trials without an objective come last"
    header.click()
    descending = [float(row[objective]) for row in table_rows(browser) if row[objective]]
    assert descending == sorted(values, reverse=True) and descending != values

    by_name = [row[name] for row in table_rows(browser)]
    browser.find_elements(By.CSS_SELECTOR, "#trials thead th")[name].click()
    assert [row[name] for row in table_rows(browser)] == sorted(by_name)

    Select(browser.find_element(By.ID, "state-filter")).select_by_value("Failed")
    failed = table_rows(browser)
    state = column(browser, "State")
    assert len(failed) == sum(t["state"] == "Failed" for t in trials) == 2
    assert all(row[state] == "Failed" for row in failed)
    Select(browser.find_element(By.ID, "state-filter")).select_by_value("")
    assert len(table_rows(browser)) == len(trials)
    assert console_errors(browser) == []


def test_csv_export_holds_every_trial(experiment_page, trials, downloads):
    browser = experiment_page
    Select(browser.find_element(By.ID, "state-filter")).select_by_value("Succeeded")
    path = os.path.join(downloads, "dash-trials.csv")
    if os.path.exists(path):
        os.remove(path)
    browser.find_element(By.ID, "export").click()
    deadline = time.monotonic() + 20
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["name"] for row in rows) == sorted(t["name"] for t in trials)
    by_name = {t["name"]: t for t in trials}
    for row in rows:
        trial = by_name[row["name"]]
        assert row["state"] == trial["state"]
        assert row["x"] == next(a["value"] for a in trial["assignments"] if a["name"] == "x")
        assert (float(row["objective"]) if row["objective"] else None) == trial.get("objectiveValue")
    assert console_errors(browser) == []


LIVE_EXPERIMENT = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: live}
spec:
  objective: {type: maximize, objectiveMetricName: score}
  algorithm: {algorithmName: grid}
  maxTrialCount: 3
  parallelTrialCount: 1
  parameters:
    - {name: x, parameterType: int, feasibleSpace: {min: "1", max: "3", step: "1"}}
  trialTemplate:
    command: [/bin/sh, -c, "while [ ! -e GATES/${trialParameters.x} ]; do sleep 0.05; done; echo score=${trialParameters.x}"]
"""


def test_a_running_experiments_page_gains_rows_and_marks_without_a_reload(browser, make_daemon, tmp_path):
    # Each trial waits for its gate file, so the test decides when the experiment moves on.
    gates = tmp_path / "gates"
    gates.mkdir()
    daemon = make_daemon()
    status, _, body = daemon.request("POST", "/v1/experiments", LIVE_EXPERIMENT.replace("GATES", str(gates)))
    assert status == 201, body
    open_page(browser, daemon, "/experiments/live")
    marks = "return Chart.getChart(document.getElementById('history'))?.getDatasetMeta(0).data.length ?? -1"
    first_state = "return document.querySelector('#trials tbody tr .status')?.textContent"
    wait(browser, lambda d: d.execute_script(first_state) == "Running")
    assert browser.execute_script(marks) == 0
    browser.execute_script("window.sameDocument = true")
    (gates / "1").touch()
    wait(browser, lambda d: d.execute_script(marks) == 1 and len(table_rows(d)) == 2, timeout=60)
    (gates / "2").touch()
    (gates / "3").touch()
    wait(browser, lambda d: d.execute_script(marks) == 3 and len(table_rows(d)) == 3, timeout=60)
    wait(browser, lambda d: d.find_element(By.ID, "status").text == "Succeeded", timeout=60)
    assert browser.execute_script("return window.sameDocument") is True, "the page was reloaded"
    assert console_errors(browser) == []


def test_a_trials_page_shows_its_parameters_metric_curve_and_log(browser, daemon, trials, screenshots):
    best = min((t for t in trials if t["state"] in COMPLETED), key=lambda t: t["objectiveValue"])
    open_page(browser, daemon, "/experiments/dash")
    wait(browser, lambda d: d.find_elements(By.LINK_TEXT, best["name"]))
    browser.find_element(By.LINK_TEXT, best["name"]).click()
    wait(browser, lambda d: d.current_url.endswith(f"/experiments/dash/trials/{best['name']}"))
    wait(browser, lambda d: "loss=" in d.find_element(By.ID, "log").text)
    assert browser.find_element(By.ID, "status").text == "Succeeded"
    parameters = browser.execute_script(
        "return [...document.querySelectorAll('#parameters tbody tr')].map((row) => [...row.cells].map((cell) => cell.innerText))")
    assert parameters == [[a["name"], a["value"]] for a in best["assignments"]]
    reports = daemon.request("GET", f"/v1/experiments/dash/trials/{best['name']}/metrics")[2]
    curves = browser.execute_script("""
        const chart = Chart.getChart(document.getElementById('metrics'));
        return chart.data.datasets.map((d, i) => ({label: d.label, marks: chart.getDatasetMeta(i).data.length, values: d.data.map((p) => p.y)}));
    """)
    assert curves == [{"label": "loss", "marks": len(reports), "values": [r["value"] for r in reports]}]
    assert browser.find_element(By.ID, "log").text.strip() == f"loss={int(best['objectiveValue'])}"
    assert console_errors(browser) == []
    browser.save_screenshot(os.path.join(screenshots, "dashboard-trial.png"))

    failed = next(t for t in trials if t["state"] == "Failed")
    browser.get(f"{daemon.url}/experiments/dash/trials/{failed['name']}")
    wait(browser, lambda d: "no luck" in d.find_element(By.ID, "log").text)
    assert browser.find_element(By.ID, "status").text == "Failed" and browser.find_element(By.ID, "exit-code").text == "3"
    assert browser.execute_script("return Chart.getChart(document.getElementById('metrics')).data.datasets.length") == 0
    assert console_errors(browser) == []
