"""The dashboard in a real browser (headless Chromium): what a person sees on the experiments list and on an
experiment's page, after knobd ran a small experiment (conftest.py)."""
import csv
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reliability"))
from knobd_process import Knobd, knobd_path  # noqa: E402

COMPLETED = {"Succeeded", "EarlyStopped"}


def wait(browser, condition, timeout=20):
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda driver: condition(driver))


def console_errors(browser):
    """The console's errors, but for the browser's note of a 404 from the importances route: that answer says
    too few trials have completed for importances (the page then says so), and Chromium logs every 404 it gets."""
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
            and not (entry["source"] == "network" and "/importances - " in entry["message"] and "status of 404" in entry["message"])]


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


def full_page_screenshot(browser, path):
    """The whole page, however long, at the window's width."""
    size = browser.get_window_size()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(size["width"], max(size["height"], height + 140))
    try:
        browser.save_screenshot(path)
    finally:
        browser.set_window_size(size["width"], size["height"])


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


def test_the_history_plot_has_a_mark_per_completed_trial_and_the_best_line_ends_at_the_best(experiment_page, daemon, trials):
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


# The page's requests to the API other than its update stream and the importances (which it reads when
# trials complete): a page that polled would show its reads of the experiment, trials or reports here.
OTHER_REQUESTS = """
    return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)
        .filter((p) => p.startsWith('/v1/') && !p.startsWith('/v1/streams/') && !p.endsWith('/importances'))"""


def test_a_running_experiments_page_gains_rows_and_marks_without_a_reload(browser, make_daemon, tmp_path):
    # Each trial waits for its gate file, so the test decides when the experiment moves on.
    gates = tmp_path / "gates"
    gates.mkdir()
    daemon = make_daemon()
    status, _, body = daemon.request("POST", "/v1/experiments", LIVE_EXPERIMENT.replace("GATES", str(gates)))
    assert status == 201, body
    open_page(browser, daemon, "/experiments/live")
    marks = "return Chart.getChart(document.getElementById('history'))?.getDatasetMeta(0).data.length ?? -1"
    curve_points = "return Chart.getChart(document.getElementById('intermediate'))?.data.datasets.reduce((n, d) => n + d.data.length, 0) ?? -1"
    first_state = "return document.querySelector('#trials tbody tr .status')?.textContent"
    wait(browser, lambda d: d.execute_script(first_state) == "Running")
    assert browser.execute_script(marks) == 0 and browser.execute_script(curve_points) == 0
    browser.execute_script("window.sameDocument = true")
    (gates / "1").touch()
    wait(browser, lambda d: d.execute_script(marks) == 1 and len(table_rows(d)) == 2, timeout=60)
    assert browser.execute_script(curve_points) == 1
    (gates / "2").touch()
    (gates / "3").touch()
    wait(browser, lambda d: d.execute_script(marks) == 3 and len(table_rows(d)) == 3, timeout=60)
    wait(browser, lambda d: d.find_element(By.ID, "status").text == "Succeeded", timeout=60)
    assert browser.execute_script(curve_points) == 3
    assert browser.execute_script("return window.sameDocument") is True, "the page was reloaded"
    # Everything came by the stream: the page read nothing else of the API.
    assert browser.execute_script(OTHER_REQUESTS) == []
    streams = browser.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/streams/')).length")
    assert streams <= 1, "one stream, not reopened"
    assert console_errors(browser) == []


def test_the_experiments_list_gains_an_experiment_without_a_reload(browser, make_daemon, tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    daemon = make_daemon()
    open_page(browser, daemon, "/")
    wait(browser, lambda d: d.find_element(By.ID, "empty").is_displayed())
    browser.execute_script("window.sameDocument = true")
    status, _, body = daemon.request("POST", "/v1/experiments", LIVE_EXPERIMENT.replace("GATES", str(gates)))
    assert status == 201, body
    cells = "return [...document.querySelectorAll('#experiments tbody tr')].map((row) => [...row.cells].map((cell) => cell.innerText))"
    wait(browser, lambda d: [row[:2] for row in d.execute_script(cells)] == [["live", "Running"]])
    for gate in "123":
        (gates / gate).touch()
    wait(browser, lambda d: d.execute_script(cells)[0][1] == "Succeeded" and d.execute_script(cells)[0][3] == "3 / 3", timeout=60)
    assert browser.execute_script("return window.sameDocument") is True
    assert browser.execute_script(OTHER_REQUESTS) == []
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


# MARK: The update streams, read as a browser's EventSource reads them


class EventStream:
    """A Server-Sent Events client on one connection: `next()` gives (event, id, parsed data), or None at the end."""

    def __init__(self, daemon, path, headers=None, timeout=30):
        self.connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=timeout)
        self.connection.request("GET", path, headers={"Authorization": f"Bearer {daemon.token}", "Accept": "text/event-stream",
                                                      **(headers or {})})
        self.response = self.connection.getresponse()
        self.comments = 0

    def next(self):
        event, ident, data = "message", None, []
        while True:
            line = self.response.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if data:
                    return event, ident, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "id":
                ident = value
            elif field == "data":
                data.append(value)

    def close(self):
        self.connection.close()


def test_a_finished_experiments_stream_sends_a_snapshot_then_ends_and_resumes_from_its_id(daemon, trials):
    stream = EventStream(daemon, "/v1/streams/experiments/dash")
    assert stream.response.status == 200 and stream.response.getheader("Content-Type").startswith("text/event-stream")
    event, ident, snapshot = stream.next()
    assert event == "snapshot" and ident
    # Each trial as the API gives it, less what finds its process and log.
    shown = ["name", "sequence", "state", "reason", "message", "assignments", "observation", "objectiveValue", "exitCode", "startedAt", "completedAt"]
    assert snapshot["trials"] == [{key: t[key] for key in shown if key in t} for t in trials]
    assert snapshot["experiment"]["name"] == "dash" and snapshot["experiment"]["status"] == "Succeeded"
    assert snapshot["parameters"] == [{"name": "x", "type": "int", "scale": "linear", "min": 1, "max": 8}]
    reports = daemon.request("GET", "/v1/experiments/dash/metrics")[2]
    assert [(r["trialName"], r["step"], r["value"]) for r in snapshot["reports"]] == [(r["trialName"], r["step"], r["value"]) for r in reports]
    # The experiment and every trial have ended, so the stream closes itself.
    assert stream.next() == ("end", None, {"reason": "finished"})
    assert stream.next() is None, "the answer ends after end"
    stream.close()

    # Resumed from the snapshot's id: nothing has changed since, so no trial and no report comes again.
    resumed = EventStream(daemon, "/v1/streams/experiments/dash", {"Last-Event-ID": ident})
    event, _, delta = resumed.next()
    assert event == "delta" and delta["trials"] == [] and delta["reports"] == [] and delta["experiment"]["name"] == "dash"
    assert resumed.next()[0] == "end"
    resumed.close()

    # One trial's stream: that trial and all its reports.
    one = EventStream(daemon, f"/v1/streams/experiments/dash?trial={trials[0]['name']}")
    event, _, snapshot = one.next()
    assert event == "snapshot" and [t["name"] for t in snapshot["trials"]] == [trials[0]["name"]]
    assert [r["trialName"] for r in snapshot["reports"]] == [trials[0]["name"]] * len(snapshot["reports"])
    assert one.next()[0] == "end"
    one.close()


def test_streams_refuse_bad_ids_unknown_names_and_answer_plain_clients_once(daemon):
    for path, headers, status in [
        ("/v1/streams/experiments/dash", {"Last-Event-ID": "12-x-4"}, 400),
        ("/v1/streams/experiments/dash?since=1-2", {}, 400),
        ("/v1/streams/experiments/nothing-here", {}, 404),
        ("/v1/streams/experiments/dash?trial=nothing-1", {}, 404),
    ]:
        response, body = get(daemon, path, {"Authorization": f"Bearer {daemon.token}", "Accept": "text/event-stream", **headers})
        assert response.status == status, (path, body)
        assert json.loads(body)["error"]["message"], body
    # A client that does not ask for an event stream (curl, a fuzzer) gets what is there now, and the end.
    response, body = get(daemon, "/v1/streams/experiments", {"Authorization": f"Bearer {daemon.token}"})
    assert response.status == 200
    text = body.decode()
    assert text.count("event: experiments") == 1 and '"name":"dash"' in text
    assert get(daemon, "/v1/streams/experiments/dash", {})[0].status == 401, "the token is needed as anywhere"


PLOTS_EXPERIMENT = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: plots}
spec:
  objective: {type: minimize, objectiveMetricName: loss}
  algorithm:
    algorithmName: random
    algorithmSettings: [{name: random_state, value: "7"}]
  maxTrialCount: 12
  maxFailedTrialCount: 12
  parallelTrialCount: 3
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.001", max: "1", distribution: logUniform}}
    - {name: layers, parameterType: int, feasibleSpace: {min: "1", max: "4"}}
    - {name: optimizer, parameterType: categorical, feasibleSpace: {list: [sgd, adam, rmsprop]}}
  trialTemplate:
    command:
      - /bin/sh
      - -c
      - |
        if [ ${trialParameters.optimizer} = sgd ] && [ ${trialParameters.layers} -ge 2 ]; then exit 2; fi
        awk 'BEGIN { print "loss=" (${trialParameters.lr} * 10 + ${trialParameters.layers}) }'
"""

# What each plot drew, read from Chart.js: the parallel coordinates' lines (runs of points between gaps),
# each slice's marks, the axes' types.
PLOTS = """
    const parallel = Chart.getChart(document.getElementById('parallel'));
    const lines = []; let line = [];
    for (const point of parallel.data.datasets[0].data) {
        if (point.y === null) { lines.push(line); line = []; } else line.push(point.y);
    }
    const slices = [...document.querySelectorAll('#slices canvas')].map((canvas) => {
        const chart = Chart.getChart(canvas);
        return {parameter: canvas.dataset.parameter, marks: chart.getDatasetMeta(0).data.length, xType: chart.scales.x.type,
                points: chart.data.datasets[0].data.map((p) => [p.x, p.y])};
    });
    const axes = Object.entries(parallel.scales).filter(([id]) => id.startsWith('a')).map(([, s]) => s.type);
    return {lines, slices, axes, history: Chart.getChart(document.getElementById('history')).getDatasetMeta(0).data.length};
"""


def test_the_plots_have_a_mark_per_completed_trial_on_axes_of_each_parameters_scale(browser, make_daemon, screenshots):
    daemon = make_daemon()
    status, _, body = daemon.request("POST", "/v1/experiments", PLOTS_EXPERIMENT)
    assert status == 201, body
    deadline = time.monotonic() + 120
    while daemon.request("GET", "/v1/experiments/plots")[2]["status"] == "Running":
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.2)
    trials = daemon.request("GET", "/v1/experiments/plots/trials")[2]
    completed = sorted((t for t in trials if t["state"] in COMPLETED and t.get("objectiveValue") is not None), key=lambda t: t["sequence"])
    assert 0 < len(completed) < len(trials), "some trials failed, some completed"
    open_page(browser, daemon, "/experiments/plots")
    wait(browser, lambda d: d.execute_script("return window.knobDrawn !== undefined"))
    drawn = browser.execute_script(PLOTS)
    assert drawn["history"] == len(completed)
    # One line per completed trial, across every parameter's axis and the objective's, each point on the plot.
    assert len(drawn["lines"]) == len(completed)
    assert all(len(line) == 4 and all(0 <= y <= 1 for y in line) for line in drawn["lines"]), drawn["lines"]
    assert drawn["axes"] == ["logarithmic", "linear", "category", "linear"]
    # The objective's axis runs from the lowest to the highest value: its ends are the best and the worst trial's.
    objective = [line[3] for line in drawn["lines"]]
    values = [t["objectiveValue"] for t in completed]
    assert objective[values.index(min(values))] == 0 and objective[values.index(max(values))] == 1
    # A categorical axis places the trial's value among the list's, in order.
    order = ["sgd", "adam", "rmsprop"]
    value = lambda t, name: next(a["value"] for a in t["assignments"] if a["name"] == name)  # noqa: E731
    assert [line[2] for line in drawn["lines"]] == [order.index(value(t, "optimizer")) / 2 for t in completed]
    slices = {s["parameter"]: s for s in drawn["slices"]}
    assert sorted(slices) == ["layers", "lr", "optimizer"]
    assert {name: s["marks"] for name, s in slices.items()} == {name: len(completed) for name in slices}
    assert {name: s["xType"] for name, s in slices.items()} == {"lr": "logarithmic", "layers": "linear", "optimizer": "category"}
    assert slices["lr"]["points"] == [[float(value(t, "lr")), t["objectiveValue"]] for t in completed]
    assert slices["optimizer"]["points"] == [[value(t, "optimizer"), t["objectiveValue"]] for t in completed]

    # Parameter importance: drawn when knobd answers them, else a note says why and no chart shows.
    status, _, answer = daemon.request("GET", "/v1/experiments/plots/importances")
    wait(browser, lambda d: d.find_element(By.ID, "importance-note").is_displayed() or d.find_element(By.ID, "importance-chart").is_displayed())
    if status == 200 and answer["importances"]:
        bars = browser.execute_script("""
            const chart = Chart.getChart(document.getElementById('importance'));
            return {labels: chart.data.labels, values: chart.data.datasets[0].data, marks: chart.getDatasetMeta(0).data.length};""")
        assert bars["labels"] == [i["name"] for i in answer["importances"]]
        assert bars["values"] == [i["importance"] for i in answer["importances"]] and bars["marks"] == len(answer["importances"])
        assert not browser.find_element(By.ID, "importance-note").is_displayed()
    else:
        note = browser.find_element(By.ID, "importance-note")
        assert note.is_displayed() and "enough trials" in note.text, note.text
        assert not browser.find_element(By.ID, "importance-chart").is_displayed()
    assert console_errors(browser) == []
    full_page_screenshot(browser, os.path.join(screenshots, "dashboard-experiment.png"))


def test_a_read_only_knobd_streams_what_knob_run_writes_in_another_process(tmp_path):
    # knob run drives the experiment and writes the store; knobd --read-only (knob dashboard's server)
    # only reads it, and learns of each commit from SQLite.
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    gates = tmp_path / "gates"
    gates.mkdir()
    spec = tmp_path / "live.yaml"
    spec.write_text(LIVE_EXPERIMENT.replace("GATES", str(gates)))
    knob = os.path.join(os.path.dirname(knobd_path()), "knob")
    run = subprocess.Popen([knob, "run", "-f", str(spec), "--home", str(home)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)
    reader = None
    try:
        deadline = time.monotonic() + 60
        while not (home / "knob.db").exists():
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read() if run.poll() is not None else "no store"
            time.sleep(0.1)
        reader = Knobd(str(home), ["--read-only"]).start()
        stream = EventStream(reader, "/v1/streams/experiments/live")
        event, _, snapshot = stream.next()
        assert event == "snapshot" and snapshot["experiment"]["name"] == "live"
        trials = {t["name"]: t for t in snapshot["trials"]}
        reports = {r["id"]: r for r in snapshot["reports"]}
        for gate in "123":
            (gates / gate).touch()
        while (message := stream.next()) is not None and message[0] != "end":
            event, _, delta = message
            assert event == "delta"
            trials.update({t["name"]: t for t in delta["trials"]})
            for report in delta["reports"]:
                assert report["id"] not in reports, "a report comes once"
                reports[report["id"]] = report
        assert message == ("end", None, {"reason": "finished"})
        assert sorted((t["sequence"], t["state"], t["objectiveValue"]) for t in trials.values()) == [
            (1, "Succeeded", 1), (2, "Succeeded", 2), (3, "Succeeded", 3)]
        assert sorted((r["trialName"], r["value"]) for r in reports.values()) == [("live-1", 1), ("live-2", 2), ("live-3", 3)]
        stream.close()
        assert run.wait(timeout=60) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        if reader:
            reader.stop()


def test_knobd_refuses_followed_streams_beyond_its_cap_and_frees_them_when_clients_go(browser, make_daemon, tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    daemon = make_daemon()
    status, _, body = daemon.request("POST", "/v1/experiments", LIVE_EXPERIMENT.replace("GATES", str(gates)))
    assert status == 201, body
    follow = {"Authorization": f"Bearer {daemon.token}", "Accept": "text/event-stream"}
    streams = [EventStream(daemon, "/v1/streams/experiments/live") for _ in range(32)]
    assert all(s.response.status == 200 and s.next()[0] == "snapshot" for s in streams)
    response, body = get(daemon, "/v1/streams/experiments/live", follow)
    assert response.status == 503 and response.getheader("Retry-After"), body
    error = json.loads(body)["error"]
    assert error["code"] == "TooManyStreams" and "32" in error["message"], error
    assert get(daemon, "/v1/streams/experiments", follow)[0].status == 503, "the list's streams count too"
    # A client that is not followed gets its answer whatever the count.
    assert get(daemon, "/v1/streams/experiments/live", {"Authorization": f"Bearer {daemon.token}"})[0].status == 200
    # A page refused says why.
    open_page(browser, daemon, "/experiments/live")
    wait(browser, lambda d: "32 update streams" in d.find_element(By.ID, "problem").text)
    assert browser.find_element(By.ID, "problem").text.startswith("live updates stopped: knobd already serves 32 update streams")
    browser.get("about:blank")
    browser.get_log("browser")  # the browser's own notes of the refusal, not this test's subject
    for stream in streams:
        stream.response.close()
        stream.close()
    # The next change is written to every stream: each finds its client gone, ends and gives its place back.
    (gates / "1").touch()
    deadline = time.monotonic() + 60
    while True:
        stream = EventStream(daemon, "/v1/streams/experiments/live")
        accepted = stream.response.status == 200
        stream.close()
        if accepted:
            break
        assert time.monotonic() < deadline, "the closed streams kept their places"
        time.sleep(0.5)
    for gate in "23":
        (gates / gate).touch()
    assert daemon.healthy()


TAIL_EXPERIMENT = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: tail}
spec:
  objective: {type: minimize, objectiveMetricName: loss}
  algorithm: {algorithmName: grid}
  maxTrialCount: 1
  parallelTrialCount: 1
  parameters:
    - {name: x, parameterType: int, feasibleSpace: {min: "1", max: "1"}}
  trialTemplate:
    command: [/bin/sh, -c, "echo warming up x=${trialParameters.x}; echo loss=4; while [ ! -e GATE ]; do sleep 0.05; done; echo done; echo loss=2"]
"""


def test_a_running_trials_page_follows_its_log_and_curve_without_polling(browser, make_daemon, tmp_path):
    gate = tmp_path / "gate"
    daemon = make_daemon()
    status, _, body = daemon.request("POST", "/v1/experiments", TAIL_EXPERIMENT.replace("GATE", str(gate)))
    assert status == 201, body
    deadline = time.monotonic() + 60
    while daemon.request("GET", "/v1/experiments/tail/trials/tail-1")[2].get("state") != "Running":
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.1)
    open_page(browser, daemon, "/experiments/tail/trials/tail-1")
    marks = "return Chart.getChart(document.getElementById('metrics'))?.data.datasets.map((d) => d.data.map((p) => p.y)) ?? null"
    wait(browser, lambda d: "warming up x=1" in d.find_element(By.ID, "log").text)
    assert browser.find_element(By.ID, "status").text == "Running"
    wait(browser, lambda d: d.execute_script(marks) == [[4]])
    browser.execute_script("window.sameDocument = true")
    gate.touch()
    wait(browser, lambda d: d.find_element(By.ID, "status").text == "Succeeded", timeout=60)
    wait(browser, lambda d: d.find_element(By.ID, "log").text.endswith("done\nloss=2"))
    wait(browser, lambda d: d.execute_script(marks) == [[4, 2]])
    assert browser.execute_script("return window.sameDocument") is True
    # The trial's stream and its log, read as they were written: nothing polled.
    requests = browser.execute_script("""
        return performance.getEntriesByType('resource').map((e) => new URL(e.name)).filter((u) => u.pathname.startsWith('/v1/'))
            .map((u) => u.pathname + u.search)""")
    assert [r for r in requests if not r.startswith("/v1/streams/")] == ["/v1/experiments/tail/trials/tail-1/logs?follow=true"], requests
    assert console_errors(browser) == []
