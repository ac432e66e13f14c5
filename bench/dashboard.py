"""The dashboard's two costs, each beside its bar.

(a) Drawing a big experiment: a 10,000-trial experiment run by `knob run` (no-op trials, `/bin/echo
    loss=…`, 8 at once) into a store, served read-only by knobd (as `knob dashboard` serves it); its page
    opened in headless Chromium, timed from navigation to the moment every plot has drawn (the page
    records `window.knobDrawn`, a `performance.now()`). Bar: 2 s.
(b) Live updates: knobd's CPU time (utime + stime from /proc) over a window while an experiment runs,
    with no page open, with 10 pages open (Chromium tabs, 5 to a browser, each following the experiment's
    update stream),
    and with none again; the extra is the 10-page figure less the mean of the two without. Bar: 5% of
    one core.

    python3 bench/dashboard.py [--trials 10000] [--window 30] [--loads 3] [--pages 10] [--store DIR]
    (--loads 0 leaves (a) out)

Uses .build/debug/{knob,knobd} unless $KNOB_BIN names another folder (bench/dashboard.sh builds and
uses .build/release). The
10,000-trial store is kept in --store (default /tmp/knob-bench-dashboard) and reused when complete.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from selenium.common.exceptions import TimeoutException

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "Tests", "reliability"))
from knobd_process import Knobd  # noqa: E402

BIN = os.environ.get("KNOB_BIN") or os.path.join(REPO, ".build", "debug")
# The knobd that Knobd (the tests' helper) starts.
os.environ.setdefault("KNOBD", os.path.join(BIN, "knobd"))
CHROMIUM = os.environ.get("KNOB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KNOB_CHROMEDRIVER", "/usr/bin/chromedriver")
TICKS = os.sysconf("SC_CLK_TCK")

BIG = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {{name: big}}
spec:
  objective: {{type: minimize, objectiveMetricName: loss}}
  algorithm:
    algorithmName: random
    algorithmSettings: [{{name: random_state, value: "1"}}]
  maxTrialCount: {trials}
  parallelTrialCount: 8
  parameters:
    - {{name: lr, parameterType: double, feasibleSpace: {{min: "0.0001", max: "1", distribution: logUniform}}}}
    - {{name: layers, parameterType: int, feasibleSpace: {{min: "1", max: "8"}}}}
    - {{name: optimizer, parameterType: categorical, feasibleSpace: {{list: [sgd, adam, rmsprop]}}}}
  trialTemplate:
    command: [/bin/echo, "loss=${{trialParameters.lr}}", "layers=${{trialParameters.layers}}", "optimizer=${{trialParameters.optimizer}}"]
"""

# Trials that take a while, so that the experiment runs through the whole measurement at a steady pace.
STEADY = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: steady}
spec:
  objective: {type: minimize, objectiveMetricName: loss}
  algorithm: {algorithmName: random}
  parallelTrialCount: 4
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.0001", max: "1", distribution: logUniform}}
    - {name: layers, parameterType: int, feasibleSpace: {min: "1", max: "8"}}
  trialTemplate:
    command: [/bin/sh, -c, "sleep 0.5; echo loss=${trialParameters.lr} layers=${trialParameters.layers}"]
"""


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1100",
                     "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    # Not waiting for every subresource: the pages' update streams never end while the experiment runs.
    options.page_load_strategy = "eager"
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def build_store(home, trials):
    """Runs the big experiment with `knob run` unless the store already holds it finished."""
    if os.path.exists(os.path.join(home, "knob.db")):
        knobd = Knobd(home, ["--read-only"])
        try:
            knobd.start()
            status, _, view = knobd.request("GET", "/v1/experiments/big")
            done = status == 200 and sum(view["trials"].values()) == trials and view["status"] == "Succeeded"
        finally:
            knobd.stop()
        if done:
            print(f"reusing the {trials}-trial store in {home}")
            return
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home, mode=0o700)
    spec = os.path.join(home, "big.yaml")
    with open(spec, "w") as f:
        f.write(BIG.format(trials=trials))
    started = time.monotonic()
    run = subprocess.run([os.path.join(BIN, "knob"), "run", "-f", spec, "--home", home, "-o", "json"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(f"knob run failed ({run.returncode}):\n{run.stderr[-3000:]}")
    print(f"knob run: {trials} trials, 8 at once, in {time.monotonic() - started:.0f} s")


def page_load(home, loads):
    """Seconds from navigation to every plot drawn, for each of `loads` loads of the big experiment's page."""
    knobd = Knobd(home, ["--read-only"]).start()
    driver = browser()
    try:
        driver.get(f"{knobd.url}/?token={knobd.token}")
        times = []
        for _ in range(loads):
            driver.get("about:blank")
            driver.get(f"{knobd.url}/experiments/big")
            deadline = time.monotonic() + 120
            while (drawn := driver.execute_script("return window.knobDrawn ?? null")) is None:
                assert time.monotonic() < deadline, "the page did not draw within 120 s"
                time.sleep(0.05)
            marks = driver.execute_script("return Chart.getChart(document.getElementById('history')).getDatasetMeta(0).data.length")
            times.append(drawn / 1000)
        return times, marks
    finally:
        driver.quit()
        knobd.stop()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_share(pid, window):
    """knobd's CPU over `window` seconds, as a share of one core."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def stream_cost(window, pages):
    home = tempfile.mkdtemp(prefix="knob-bench-sse-")
    os.chmod(home, 0o700)
    knobd = Knobd(home).start()
    drivers = []
    try:
        status, _, body = knobd.request("POST", "/v1/experiments", STEADY)
        assert status == 201, body
        time.sleep(5)  # past the start
        pid = knobd.process.pid
        idle_before = cpu_share(pid, window)
        # A browser opens at most 6 connections to one address over HTTP/1.1 and each page holds one for
        # its stream: 5 pages a browser, so that each can still load.
        for index in range(pages):
            if index % 5 == 0:
                drivers.append(browser())
                drivers[-1].get(f"{knobd.url}/?token={knobd.token}")
            else:
                drivers[-1].switch_to.new_window("tab")
            try:
                drivers[-1].get(f"{knobd.url}/experiments/steady")
            except TimeoutException:
                pass  # the page goes on loading; what counts is that it draws
            deadline = time.monotonic() + 120
            while drivers[-1].execute_script("return window.knobDrawn ?? null") is None:
                assert time.monotonic() < deadline, f"page {index + 1} did not draw"
                time.sleep(0.1)
        open_pages = sum(len(d.window_handles) for d in drivers)
        time.sleep(2)
        followed = cpu_share(pid, window)
        rows = drivers[-1].execute_script("return document.querySelectorAll('#trials tbody tr').length")
        while drivers:
            drivers.pop().quit()
        time.sleep(2)
        idle_after = cpu_share(pid, window)
        trials = sum(knobd.request("GET", "/v1/experiments/steady")[2]["trials"].values())
        return idle_before, followed, idle_after, rows, trials, open_pages
    finally:
        for driver in drivers:
            driver.quit()
        knobd.request("POST", "/v1/experiments/steady/stop", timeout=30)
        knobd.stop()
        knobd.kill_leftovers()
        shutil.rmtree(home, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--store", default="/tmp/knob-bench-dashboard")
    arguments = parser.parse_args()
    print(f"binaries: {BIN}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")

    if arguments.loads:
        build_store(arguments.store, arguments.trials)
        times, marks = page_load(arguments.store, arguments.loads)
        ordered = sorted(times)
        print(f"(a) experiment page of {arguments.trials} trials ({marks} marks in the history plot), navigation to every plot drawn:")
        print(f"    loads {', '.join(f'{t:.2f}' for t in times)} s; median {ordered[len(ordered) // 2]:.2f} s   bar: 2.00 s")

    before, followed, after, rows, trials, tabs = stream_cost(arguments.window, arguments.pages)
    idle = (before + after) / 2
    print(f"(b) knobd CPU over {arguments.window:.0f} s windows while an experiment runs ({trials} trials by the end; "
          f"the pages showed {rows} rows):")
    print(f"    no page open {100 * before:.2f}% of a core, then {arguments.pages} pages open {100 * followed:.2f}%, "
          f"then none again {100 * after:.2f}%")
    print(f"    extra for {tabs} pages: {100 * (followed - idle):+.2f}% of a core   bar: +5.00%")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
