"""What the tests of the Kubernetes API test server share: starting it, and waiting for what it does."""

import os
import subprocess
import sys
import time

from kubernetes import config
from kubernetes.client.rest import ApiException

SERVER = os.path.join(os.path.dirname(__file__), "kube_apiserver.py")


def serve(directory, *options):
    """Starts the server with these options; its process and an API client of its kubeconfig, once it listens."""
    process = subprocess.Popen([sys.executable, SERVER, "--dir", str(directory), *options], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith("listening on https://127.0.0.1:"), line
    return process, config.new_client_from_config(config_file=str(directory / "kubeconfig"))


def wait_until(read, done, what, timeout=60):
    """`read()` once `done` holds for it, looked at every 0.1 s; fails after `timeout` seconds with the last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = read()
        if done(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: never happened; last seen {value}")


def written_log(core, pod, namespace, **options):
    """The pod's log once it has some. Until its container starts, the API answers 400 "is waiting to start"
    (ContainerCreating, PodInitializing), as a real kubelet does; that counts as no log yet."""
    def read():
        try:
            return core.read_namespaced_pod_log(pod, namespace, **options)
        except ApiException as error:
            if error.status == 400 and "is waiting to start" in (error.body or ""):
                return ""
            raise
    return wait_until(read, bool, f"{pod}'s log")
