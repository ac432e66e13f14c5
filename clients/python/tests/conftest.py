import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))


def knobd_path():
    path = os.environ.get("KNOBD") or os.path.join(REPO, ".build", "debug", "knobd")
    if not os.access(path, os.X_OK):
        pytest.fail(f"knobd is not built at {path}: run `swift build` first (or set KNOBD)")
    return path


@pytest.fixture
def knobd():
    """A real knobd on a temporary home; yields the home."""
    yield from _knobd([])


@pytest.fixture
def knobd_tcp():
    """A real knobd that also serves TCP with a token; yields (home, url, token)."""
    port = 21000 + os.getpid() % 20000
    token_dir = tempfile.mkdtemp(prefix="knob-token-")
    token = "py-token-0123456789abcdef"
    with open(os.open(os.path.join(token_dir, "token"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(token + "\n")
    for home in _knobd(["--listen", f"127.0.0.1:{port}", "--token-file", os.path.join(token_dir, "token")]):
        yield home, f"http://127.0.0.1:{port}", token


@pytest.fixture
def make_knobd():
    """Starts knobds with the arguments a test gives (`make_knobd(["--kubeconfig", F])` → its home), each stopped at
    the test's end."""
    started = []

    def start(arguments):
        daemon = _knobd(arguments)
        home = next(daemon)
        started.append(daemon)
        return home

    yield start
    for daemon in started:
        next(daemon, None)


def _knobd(arguments):
    home = tempfile.mkdtemp(prefix="knob-py-")
    log = open(os.path.join(home, "knobd.log"), "w")
    # No cluster but the one a test passes: not the machine's kubeconfig, nor a pod's service account.
    environment = {key: value for key, value in os.environ.items() if key not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    environment["HOME"] = home
    process = subprocess.Popen([knobd_path(), "--home", home] + arguments, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, env=environment)
    socket_path = os.path.join(home, "knobd.sock")
    deadline = time.monotonic() + 15
    while not os.path.exists(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail("knobd did not start: " + open(os.path.join(home, "knobd.log")).read())
        time.sleep(0.05)
    yield home
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    log.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def start_kube_cluster():
    """Starts the Kubernetes API test server (Tests/kube-apiserver) with the arguments a test gives
    (`start_kube_cluster(folder, "--serve-kinds", "argoproj.io")` → the folder with its kubeconfig), each stopped at
    the test's end. knob is on the containers' PATH (the test cluster's "images" are this machine): a TensorFlowEvent
    sidecar runs `knob collect`."""
    started = []
    build = os.path.dirname(knobd_path())

    def start(directory, *arguments):
        environment = dict(os.environ, PATH=build + os.pathsep + os.environ.get("PATH", ""))
        process = subprocess.Popen([sys.executable, os.path.join(REPO, "Tests", "kube-apiserver", "kube_apiserver.py"), "--dir", str(directory),
                                    *arguments], stdout=subprocess.PIPE, text=True, env=environment)
        started.append(process)
        line = process.stdout.readline()
        assert line.startswith("listening on https://127.0.0.1:"), line
        return directory

    yield start
    for process in started:
        process.terminate()
        process.wait(10)
