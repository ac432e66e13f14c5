"""Fixtures of the dashboard tests: one knobd serving TCP with a token, with a small experiment run to its end,
and a headless Chromium (Debian's chromium and chromium-driver) driven by selenium."""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reliability"))
from knobd_process import Knobd  # noqa: E402

CHROMIUM = os.environ.get("KNOB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KNOB_CHROMEDRIVER", "/usr/bin/chromedriver")

# Eight trials, x = 1…8 by grid search: those with x a multiple of 3 fail, the others report loss = (x-5)², so the
# best trial is x = 5 with loss 0, and 6 trials complete.
EXPERIMENT = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: dash}
spec:
  objective: {type: minimize, objectiveMetricName: loss}
  algorithm: {algorithmName: grid}
  maxTrialCount: 8
  maxFailedTrialCount: 5
  parallelTrialCount: 2
  parameters:
    - {name: x, parameterType: int, feasibleSpace: {min: "1", max: "8", step: "1"}}
  trialTemplate:
    command: [/bin/sh, -c, "x=${trialParameters.x}; if [ $((x % 3)) -eq 0 ]; then echo no luck >&2; exit 3; fi; echo loss=$(( (x-5)*(x-5) ))"]
"""


@pytest.fixture(scope="session")
def daemon():
    """knobd on TCP with the experiment above finished; yields the Knobd."""
    home = tempfile.mkdtemp(prefix="knob-dashboard-")
    os.chmod(home, 0o700)
    knobd = Knobd(home).start()
    status, _, body = knobd.request("POST", "/v1/experiments", EXPERIMENT)
    assert status == 201, body
    knobd.wait_for_end("dash")
    yield knobd
    knobd.stop()
    knobd.kill_leftovers()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def make_daemon():
    """Starts knobds of a test's own (on TCP with a token), stopped at its end."""
    made = []

    def make():
        home = tempfile.mkdtemp(prefix="knob-dashboard-")
        os.chmod(home, 0o700)
        made.append(Knobd(home).start())
        return made[-1]

    yield make
    for knobd in made:
        knobd.stop()
        knobd.kill_leftovers()
        shutil.rmtree(knobd.home, ignore_errors=True)


@pytest.fixture(scope="session")
def trials(daemon):
    status, _, body = daemon.request("GET", "/v1/experiments/dash/trials")
    assert status == 200, body
    return body


@pytest.fixture(scope="session")
def downloads():
    folder = tempfile.mkdtemp(prefix="knob-dashboard-downloads-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: the dashboard tests need Debian's chromium and chromium-driver (.ci/install-deps installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1100",
                     "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def screenshots():
    """Where the pages' screenshots go: $KNOB_SCREENSHOTS, or a temporary folder."""
    folder = os.environ.get("KNOB_SCREENSHOTS") or tempfile.mkdtemp(prefix="knob-dashboard-screenshots-")
    os.makedirs(folder, exist_ok=True)
    return folder
