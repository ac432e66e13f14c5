"""A real knobd for the reliability tests: the debug build, on a temporary home, serving TCP with a token."""
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OPENAPI = os.path.join(REPO, "Sources", "KnobServer", "openapi.yaml")
# knobd may use this much address space; a request that makes it want more kills it instead of the machine.
ADDRESS_SPACE_LIMIT = 4 << 30


def knobd_path():
    path = os.environ.get("KNOBD") or os.path.join(REPO, ".build", "debug", "knobd")
    if not os.access(path, os.X_OK):
        pytest.fail(f"knobd is not built at {path}: run `swift build` first (or set KNOBD)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


class Knobd:
    """One knobd process over a home that outlives it, so that a test can stop it and start it again."""

    def __init__(self, home, arguments=()):
        self.home = home
        self.arguments = list(arguments)
        self.token = "reliability-" + os.urandom(16).hex()
        self.token_file = os.path.join(home, "token")
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(self.token + "\n")
        self.port = None
        self.process = None
        self.log_path = os.path.join(home, "knobd.log")

    def start(self, timeout=20):
        self.port = free_port()
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [knobd_path(), "--home", self.home, "--listen", f"127.0.0.1:{self.port}", "--token-file", self.token_file]
            + self.arguments,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_limit_address_space)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"knobd exited with {self.process.returncode} while starting:\n{self.log()}")
            if self.healthy(timeout=1):
                return self
            time.sleep(0.05)
        pytest.fail(f"knobd did not answer /healthz within {timeout} s:\n{self.log()}")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, content_type="application/yaml", timeout=10):
        """(status, headers, decoded JSON or text); raises on a timeout or a dropped connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {self.token}"}
            if body is not None:
                headers["Content-Type"] = content_type
                if isinstance(body, str):
                    body = body.encode()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            text = data.decode(errors="replace")
            try:
                payload = json.loads(text) if text else None
            except ValueError:
                payload = text
            return response.status, dict(response.getheaders()), payload
        finally:
            connection.close()

    def healthy(self, timeout=5):
        try:
            return self.request("GET", "/healthz", timeout=timeout)[0] == 200
        except OSError:
            return False

    def wait_for_end(self, name, timeout=120):
        """The experiment's view once it has ended (Succeeded, Failed or Stopped); fails the test after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            status, _, experiment = self.request("GET", f"/v1/experiments/{name}")
            assert status == 200, experiment
            if experiment["status"] in ("Succeeded", "Failed", "Stopped"):
                return experiment
            assert time.monotonic() < deadline, f"experiment {name} did not end: {experiment}\n{self.log()}"
            time.sleep(0.2)

    def stop(self, timeout=20):
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def processes_under_home(self):
        """Pids of live processes (other than knobd) whose command line or folder names this home: its trials."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or (self.process and int(entry) == self.process.pid):
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().decode(errors="replace")
                cwd = os.readlink(f"/proc/{entry}/cwd")
                with open(f"/proc/{entry}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            if self.home in cmdline or cwd.startswith(self.home):
                found.append(int(entry))
        return found

    def kill_leftovers(self):
        for pid in self.processes_under_home():
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except OSError:
                pass


# Lines the tests want in the run's output whatever pytest's verbosity (conftest prints them at the end).
SUMMARY = []


def report(line):
    SUMMARY.append(line)
