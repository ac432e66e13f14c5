"""The Kubernetes API test server, checked with the official Python client: it must speak the
real API (paths, objects, status codes, log streams), not only what knob expects of it."""

import os
import subprocess
import sys
import time

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

SERVER = os.path.join(os.path.dirname(__file__), "kube_apiserver.py")


@pytest.fixture()
def cluster(tmp_path):
    process = subprocess.Popen([sys.executable, SERVER, "--dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith("listening on https://127.0.0.1:"), line
    api_client = config.new_client_from_config(config_file=str(tmp_path / "kubeconfig"))
    yield client.CoreV1Api(api_client), client.BatchV1Api(api_client), tmp_path
    process.terminate()
    process.wait(5)


def pod(name, command, labels=None):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1PodSpec(restart_policy="Never", containers=[
            client.V1Container(name="main", image="python:3.11", command=command)]))


def wait_for_phase(core, name, phases, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        current = core.read_namespaced_pod(name, "default")
        if current.status.phase in phases:
            return current
        time.sleep(0.1)
    raise AssertionError(f"pod {name} never reached {phases}")


def test_pod_lifecycle_through_the_official_client(cluster):
    core, _, _ = cluster
    script = "import sys; print('Epoch 1. accuracy=0.5'); print('Epoch 2. accuracy=0.75'); sys.exit(3)"
    created = core.create_namespaced_pod("default", pod("trial-1", [sys.executable, "-c", script], {"app": "knob"}))
    assert created.metadata.uid and created.metadata.resource_version

    with pytest.raises(ApiException) as conflict:
        core.create_namespaced_pod("default", pod("trial-1", ["true"]))
    assert conflict.value.status == 409

    listed = core.list_namespaced_pod("default", label_selector="app=knob")
    assert [p.metadata.name for p in listed.items] == ["trial-1"]
    assert core.list_namespaced_pod("default", label_selector="app=other").items == []

    finished = wait_for_phase(core, "trial-1", ["Failed"])
    terminated = finished.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")

    log = core.read_namespaced_pod_log("trial-1", "default", container="main")
    assert log == "Epoch 1. accuracy=0.5\nEpoch 2. accuracy=0.75\n"
    stamped = core.read_namespaced_pod_log("trial-1", "default", timestamps=True)
    assert all(line.split(" ", 1)[0].endswith("Z") for line in stamped.splitlines())

    core.delete_namespaced_pod("trial-1", "default", grace_period_seconds=0)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            core.read_namespaced_pod("trial-1", "default")
        except ApiException as gone:
            assert gone.status == 404
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the pod was not deleted")


def test_watch_and_followed_log(cluster):
    core, _, _ = cluster
    script = "import time\nfor i in range(3):\n    print(f'step={i}', flush=True)\n    time.sleep(0.2)\n"
    listed = core.list_namespaced_pod("default")
    core.create_namespaced_pod("default", pod("trial-2", [sys.executable, "-c", script], {"knob.dev/trial": "t2"}))
    phases = []
    for event in watch.Watch().stream(core.list_namespaced_pod, "default", label_selector="knob.dev/trial=t2",
                                      resource_version=listed.metadata.resource_version, timeout_seconds=20):
        phases.append((event["type"], event["object"].status.phase))
        if event["object"].status.phase == "Succeeded":
            break
    assert phases[0] == ("ADDED", "Pending")
    assert ("MODIFIED", "Running") in phases and phases[-1] == ("MODIFIED", "Succeeded")
    followed = core.read_namespaced_pod_log("trial-2", "default", follow=True, _preload_content=False)
    assert followed.data.decode() == "step=0\nstep=1\nstep=2\n"


def test_invalid_manifests_get_422_from_the_schema(cluster):
    core, _, directory = cluster
    bad = client.V1Pod(metadata=client.V1ObjectMeta(name="bad"),
                       spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="x")]))
    body = client.ApiClient().sanitize_for_serialization(bad)
    body["spec"]["containers"][0]["comand"] = ["python3"]  # a misspelt field
    # The client refuses this itself; send it as raw JSON, as other clients could.
    api = core.api_client
    response = api.rest_client.request(
        "POST", f"{api.configuration.host}/api/v1/namespaces/default/pods",
        headers={"Content-Type": "application/json", "Accept": "application/json"}, body=body)
    response.read()
    assert response.status == 422
    assert "comand" in response.data.decode()


def test_jobs_run_their_pods(cluster):
    core, batch, _ = cluster
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="job-1"),
        spec=client.V1JobSpec(backoff_limit=0, template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"knob.dev/trial": "j1"}),
            spec=client.V1PodSpec(restart_policy="Never", containers=[
                client.V1Container(name="main", image="x", command=[sys.executable, "-c", "print('loss=0.25')"])]))))
    batch.create_namespaced_job("default", job)
    deadline = time.time() + 20
    while time.time() < deadline:
        status = batch.read_namespaced_job("job-1", "default").status
        if status.conditions:
            break
        time.sleep(0.1)
    assert [c.type for c in status.conditions if c.status == "True"][-1] == "Complete"
    pods = core.list_namespaced_pod("default", label_selector="job-name=job-1").items
    assert len(pods) == 1 and pods[0].metadata.labels["knob.dev/trial"] == "j1"
    assert core.read_namespaced_pod_log(pods[0].metadata.name, "default") == "loss=0.25\n"
