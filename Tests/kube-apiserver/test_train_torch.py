"""examples/mnist/train_torch.py, the PyTorch MNIST trainer: as three processes of one gloo group (the
environment the training operator gives a PyTorchJob's replicas), as one process, as a PyTorchJob that
the Kubernetes API test server runs, and with bad input."""

import functools
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
from kubernetes import client

from kube_test_client import serve, wait_until

TRAINER = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mnist", "train_torch.py"))
DATA = "/usr/share/datasets/fashion-mnist"
# A subset small enough for seconds per epoch on two cores shared by three processes.
SUBSET = ["--train-limit=2000", "--test-limit=1000", "--lr=0.05", "--momentum=0.9", "--batch-size=32", "--timeout=120"]
EPOCH = re.compile(r"^\S+ INFO     Epoch (\d+)\. accuracy=(\d\.\d{4}) - loss=(\d+\.\d{4})$")


@functools.cache
def torch_python():
    """An interpreter whose torch works with its NumPy: this one, else Debian's python3 (python3-torch is Debian's,
    built against Debian's NumPy 1.x; the test environment may be made from another Python, or have NumPy 2); None
    when there is none."""
    candidates = dict.fromkeys(p for p in (sys.executable, shutil.which("python3"), "/usr/bin/python3") if p)
    for python in candidates:
        if subprocess.run([python, "-c", "import numpy, torch; torch.from_numpy(numpy.zeros(1))"], capture_output=True).returncode == 0:
            return python
    return None


@pytest.fixture()
def python():
    found = torch_python()
    if found is None:
        pytest.skip("no Python here can import torch: install Debian's python3-torch (.ci/install-deps does)")
    if not os.path.isdir(DATA):
        pytest.skip(f"no Fashion-MNIST at {DATA}: install Debian's dataset-fashion-mnist (.ci/install-deps does)")
    return found


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(**values):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")}
    return env | {k: str(v) for k, v in values.items()}


def epochs(output):
    """(epoch, accuracy, loss) of each epoch line, after checking that every line of the output is a log line."""
    lines = output.splitlines()
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO     ", line) for line in lines), output
    return [(int(m[1]), float(m[2]), float(m[3])) for m in map(EPOCH.match, lines) if m]


def test_three_ranks_train_together_and_rank_0_alone_logs(python):
    port = free_port()
    ranks = [subprocess.Popen([python, TRAINER, "--epochs=2", *SUBSET], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=environment(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE=3, RANK=rank))
             for rank in range(3)]
    try:
        outputs = [rank.communicate(timeout=300) for rank in ranks]
    finally:
        for rank in ranks:
            rank.kill()
    for rank, (process, (out, err)) in enumerate(zip(ranks, outputs)):
        assert process.returncode == 0, f"rank {rank} exited {process.returncode}: {err}"
    assert outputs[1][0] == "" and outputs[2][0] == "", outputs  # only rank 0 logs
    lines = epochs(outputs[0][0])
    assert [epoch for epoch, _, _ in lines] == [1, 2], outputs[0][0]
    assert "on each of 3 processes (gloo)" in outputs[0][0]
    # Ten classes: chance is 0.1.
    assert lines[-1][1] > 0.5, outputs[0][0]


def test_one_process_without_world_size(python):
    result = subprocess.run([python, TRAINER, "--epochs=2", *SUBSET], capture_output=True, text=True, env=environment(), timeout=300)
    assert result.returncode == 0, result.stderr
    lines = epochs(result.stdout)
    assert [epoch for epoch, _, _ in lines] == [1, 2]
    assert lines[-1][1] > 0.5, result.stdout
    assert "processes" not in result.stdout


def test_a_pytorchjob_of_the_trainer_runs_on_the_test_server(python, tmp_path):
    """The test server plays the training operator: the replicas find each other with the env it gives them."""
    process, api = serve(tmp_path)
    try:
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)

        def replica(count):
            return {"replicas": count, "restartPolicy": "Never", "template": {"spec": {"containers": [{
                "name": "pytorch", "image": "registry.example.com/knob-mnist-torch:1",
                "command": [python, TRAINER, "--epochs=1", *SUBSET]}]}}}
        custom.create_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs", {
            "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "mnist"},
            "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(2)}}})
        job = wait_until(lambda: custom.get_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs", "mnist"),
                         lambda j: {c["type"] for c in j.get("status", {}).get("conditions", [])} & {"Succeeded", "Failed"},
                         "the PyTorchJob ending", timeout=300)
        logs = {pod: core.read_namespaced_pod_log(pod, "default") for pod in ("mnist-master-0", "mnist-worker-0", "mnist-worker-1")}
        assert job["status"]["conditions"][-1]["type"] == "Succeeded", logs
        lines = epochs(logs["mnist-master-0"])
        assert [epoch for epoch, _, _ in lines] == [1] and lines[0][1] > 0.5, logs
        assert logs["mnist-worker-0"] == "" and logs["mnist-worker-1"] == "", logs
    finally:
        process.terminate()
        process.wait(5)


def test_an_empty_data_folder_is_named(python, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = subprocess.run([python, TRAINER, f"--data={empty}"], capture_output=True, text=True, env=environment(), timeout=120)
    assert result.returncode != 0
    assert str(empty) in result.stderr and "train-images-idx3-ubyte" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_group_without_its_master_address_is_refused(python):
    result = subprocess.run([python, TRAINER, *SUBSET], capture_output=True, text=True, env=environment(WORLD_SIZE=3, RANK=1),
                            timeout=120)
    assert result.returncode != 0
    assert "WORLD_SIZE=3 but MASTER_ADDR and MASTER_PORT are not set" in result.stderr, result.stderr
