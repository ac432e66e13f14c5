"""The Kubernetes API test server, checked with the official Python client: it must speak the
real API (paths, objects, status codes, log streams), not only what knob expects of it."""

import json
import os
import sys
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kube_test_client import serve, wait_until


@pytest.fixture()
def cluster(tmp_path):
    process, api_client = serve(tmp_path)
    yield client.CoreV1Api(api_client), client.BatchV1Api(api_client), tmp_path
    process.terminate()
    process.wait(5)


@pytest.fixture()
def server_and_cluster(tmp_path):
    """The cluster, with the server's process (to look at its mounts) and no image under registry.invalid pulling."""
    process, api_client = serve(tmp_path, "--faults", '[{"imagePull": "registry.invalid"}]')
    yield process, client.CoreV1Api(api_client), client.BatchV1Api(api_client), tmp_path
    process.terminate()
    process.wait(5)


def pod(name, command, labels=None):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1PodSpec(restart_policy="Never", containers=[
            client.V1Container(name="main", image="python:3.11", command=command)]))


def wait_for_phase(core, name, phases, timeout=20):
    return wait_until(lambda: core.read_namespaced_pod(name, "default"), lambda current: current.status.phase in phases,
                      f"pod {name} reaching {phases}", timeout)


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


# A metrics collector as a native sidecar: it prints each new line of a file the trial's container
# writes in a shared emptyDir volume and, stopped with SIGTERM, reads the file a last time, says
# goodbye (after a pause, so that a log followed to its end must wait for it) and exits 0. Once it
# handles SIGTERM it makes FILE.ready, which the trial's container waits for.
COLLECTOR = """
import os, signal, sys, time
path = sys.argv[1]
print(f"pid={os.getpid()}", flush=True)
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
try:
    open(path + ".ready", "w").close()
except OSError:
    pass
seen = 0
def read():
    global seen
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return
    for line in lines[seen:]:
        print(line, flush=True)
    seen = len(lines)
while not stopping:
    read()
    time.sleep(0.05)
read()
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
print("collector stopped", flush=True)
"""


def await_collector(mount_path):
    """Shell that waits for the collector to be ready to read its file a last time when stopped."""
    return f"until [ -e {mount_path}/m.log.ready ]; do sleep 0.05; done"


def metrics_volume(mount_path, sub_path=None):
    return client.V1VolumeMount(name="metrics", mount_path=mount_path, sub_path=sub_path)


def pod_spec(containers, init_containers, restart_policy="Never"):
    return client.V1PodSpec(restart_policy=restart_policy, containers=containers, init_containers=init_containers,
                            volumes=[client.V1Volume(name="metrics", empty_dir=client.V1EmptyDirVolumeSource())])


def mounted(pid, path):
    """Whether a process's mount table has an entry at path."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_a_job_with_a_metrics_sidecar_completes_and_the_sidecar_log_has_the_metrics(server_and_cluster):
    server, core, batch, directory = server_and_cluster
    mount_path = str(directory / "var" / "log" / "katib")
    trial = client.V1Container(name="main", image="python:3.11", command=["sh", "-c", f"{await_collector(mount_path)}; echo loss=0.5 > {mount_path}/m.log"],
                               volume_mounts=[metrics_volume(mount_path)])
    collector = client.V1Container(name="metrics-logger", image="python:3.11", restart_policy="Always",
                                   command=[sys.executable, "-c", COLLECTOR, f"{mount_path}/m.log"], volume_mounts=[metrics_volume(mount_path)])
    job = client.V1Job(metadata=client.V1ObjectMeta(name="job-sidecar"), spec=client.V1JobSpec(backoff_limit=0, template=client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"knob.dev/trial": "s1"}), spec=pod_spec([trial], [collector]))))
    listed = core.list_namespaced_pod("default")
    batch.create_namespaced_job("default", job)
    status = wait_until(lambda: batch.read_namespaced_job("job-sidecar", "default").status, lambda s: s.conditions, "the Job ended", timeout=30)
    assert [c.type for c in status.conditions if c.status == "True"][-1] == "Complete"

    [pod] = core.list_namespaced_pod("default", label_selector="job-name=job-sidecar").items
    name = pod.metadata.name
    # The schemas the server checks with (strict) know native sidecars and emptyDir volumes.
    with open(directory / "created.jsonl") as f:
        created = {record["object"]["metadata"]["name"]: record for record in map(json.loads, f)}
    assert created["job-sidecar"]["valid"] and created[name]["valid"]
    assert created[name]["object"]["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    assert pod.status.phase == "Succeeded"
    [sidecar] = pod.status.init_container_statuses
    assert (sidecar.name, sidecar.image, sidecar.ready, sidecar.started, sidecar.restart_count) == ("metrics-logger", "python:3.11", False, False, 0)
    assert (sidecar.state.terminated.exit_code, sidecar.state.terminated.reason) == (0, "Completed")
    assert pod.status.container_statuses[0].state.terminated.reason == "Completed"
    assert {c.type: c.status for c in pod.status.conditions}["Initialized"] == "True"

    log = core.read_namespaced_pod_log(name, "default", container="metrics-logger")
    assert "loss=0.5" in log.splitlines() and log.endswith("collector stopped\n")
    assert core.read_namespaced_pod_log(name, "default", container="main") == ""
    # The volume was the pod's own: the host's folder at the mount path has no file, and no mount is left.
    assert os.listdir(mount_path) == []
    assert not mounted("self", mount_path) and not mounted(server.pid, mount_path)

    # Pending while the sidecar starts, then Running; Succeeded only once the sidecar has ended.
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_pod, "default", label_selector="job-name=job-sidecar",
                                      resource_version=listed.metadata.resource_version, timeout_seconds=5):
        current = event["object"].status
        seen.append(current)
        if current.phase == "Succeeded":
            break
    starting = [s for s in seen if s.init_container_statuses and s.init_container_statuses[0].state.running and s.phase == "Pending"]
    assert starting and all(s.container_statuses[0].state.waiting.reason == "PodInitializing" for s in starting)
    assert any(s.phase == "Running" and s.init_container_statuses[0].state.running for s in seen)
    ended = [s for s in seen if s.phase in ("Succeeded", "Failed")]
    assert ended and all(s.init_container_statuses[0].state.terminated for s in ended)
    assert all(s.phase == "Running" for s in seen[1:] if s.container_statuses[0].state.terminated and s.init_container_statuses[0].state.running)
    assert seen[0].container_statuses is None  # as created


def test_init_containers_run_in_order_and_a_failed_one_fails_the_pod(server_and_cluster):
    _, core, _, directory = server_and_cluster
    mount_path = str(directory / "shared")
    prepare = client.V1Container(name="prepare", image="busybox", command=["sh", "-c", f"sleep 0.2; echo prepared > {mount_path}/flag"],
                                 volume_mounts=[metrics_volume(mount_path, "data")])
    # A sidecar that ignores nothing: SIGTERM ends it with 143, which does not fail the pod.
    idle = client.V1Container(name="idle", image="busybox", restart_policy="Always", command=["sleep", "600"])
    trial = client.V1Container(name="main", image="busybox", command=["cat", f"{mount_path}/flag"], volume_mounts=[metrics_volume(mount_path, "data")])
    core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="ordered"), spec=pod_spec([trial], [idle, prepare])))
    done = wait_for_phase(core, "ordered", ["Succeeded", "Failed"])
    assert done.status.phase == "Succeeded"
    assert core.read_namespaced_pod_log("ordered", "default", container="main") == "prepared\n"
    statuses = {s.name: s for s in done.status.init_container_statuses}
    assert [s.name for s in done.status.init_container_statuses] == ["idle", "prepare"]
    assert (statuses["idle"].state.terminated.exit_code, statuses["idle"].state.terminated.reason) == (143, "Error")
    assert (statuses["prepare"].state.terminated.exit_code, statuses["prepare"].ready) == (0, True)
    assert statuses["prepare"].state.terminated.finished_at <= done.status.container_statuses[0].state.terminated.started_at
    assert os.listdir(mount_path) == [] and not mounted("self", mount_path)

    failing = client.V1Container(name="prepare", image="busybox", command=["sh", "-c", "echo no data >&2; exit 3"])
    core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="unprepared"), spec=pod_spec(
        [client.V1Container(name="main", image="busybox", command=["echo", "ran"])], [failing])))
    failed = wait_for_phase(core, "unprepared", ["Succeeded", "Failed"])
    assert failed.status.phase == "Failed"
    assert failed.status.init_container_statuses[0].state.terminated.exit_code == 3
    assert failed.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    assert core.read_namespaced_pod_log("unprepared", "default", container="prepare") == "no data\n"
    with pytest.raises(ApiException) as never_ran:
        core.read_namespaced_pod_log("unprepared", "default", container="main")
    assert never_ran.value.status == 400 and 'container \\"main\\" in pod \\"unprepared\\" is waiting to start: PodInitializing' in never_ran.value.body


def test_a_sidecar_image_that_never_pulls_leaves_the_pod_pending(server_and_cluster):
    _, core, _, _ = server_and_cluster
    collector = client.V1Container(name="metrics-logger", image="registry.invalid/collector:1", restart_policy="Always", command=["sleep", "600"])
    trial = client.V1Container(name="main", image="python:3.11", command=["echo", "ran"])
    core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="unpulled"), spec=pod_spec([trial], [collector])))
    pod = wait_until(lambda: core.read_namespaced_pod("unpulled", "default"),
                   lambda p: p.status.init_container_statuses and p.status.init_container_statuses[0].state.waiting.reason != "PodInitializing",
                   "the sidecar's image failed to pull", timeout=30)
    assert pod.status.phase == "Pending"
    waiting = pod.status.init_container_statuses[0].state.waiting
    assert (waiting.reason, waiting.message) == ("ImagePullBackOff", 'Back-off pulling image "registry.invalid/collector:1"')
    assert pod.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    initialized = next(c for c in pod.status.conditions if c.type == "Initialized")
    assert (initialized.status, initialized.message) == ("False", "containers with incomplete status: [metrics-logger]")

    def log_error(**options):
        with pytest.raises(ApiException) as refused:
            core.read_namespaced_pod_log("unpulled", "default", **options)
        assert refused.value.status == 400
        return json.loads(refused.value.body)["message"]
    assert log_error(container="metrics-logger") == 'container "metrics-logger" in pod "unpulled" is waiting to start: trying and failing to pull image'
    assert log_error() == 'container "main" in pod "unpulled" is waiting to start: PodInitializing'
    assert log_error(container="nope") == "container nope is not valid for pod unpulled"

    # A sidecar that runs while the pod's container cannot pull is killed with the pod.
    collector = client.V1Container(name="metrics-logger", image="python:3.11", restart_policy="Always", command=[sys.executable, "-c", COLLECTOR, "/nonexistent/m.log"])
    trials = [client.V1Container(name=n, image="registry.invalid/trial:1", command=["echo", "ran"]) for n in ("main", "other")]
    core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="half-pulled"), spec=pod_spec(trials, [collector])))
    pod = wait_until(lambda: core.read_namespaced_pod("half-pulled", "default"),
                   lambda p: p.status.container_statuses and p.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff",
                   "the trial's image failed to pull", timeout=30)
    assert pod.status.phase == "Pending" and pod.status.init_container_statuses[0].state.running
    with pytest.raises(ApiException) as unnamed:
        core.read_namespaced_pod_log("half-pulled", "default")
    assert json.loads(unnamed.value.body)["message"] == "a container name must be specified for pod half-pulled, choose one of: [metrics-logger main other]"
    log = wait_until(lambda: core.read_namespaced_pod_log("half-pulled", "default", container="metrics-logger"), lambda l: l.startswith("pid="),
                   "the collector said its pid", timeout=30)
    pid = int(log.splitlines()[0].removeprefix("pid="))
    core.delete_namespaced_pod("half-pulled", "default", grace_period_seconds=5)
    wait_until(lambda: [p.metadata.name for p in core.list_namespaced_pod("default").items], lambda names: "half-pulled" not in names, "the pod went", timeout=30)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_followed_sidecar_log_ends_when_the_sidecar_ends(server_and_cluster):
    _, core, _, directory = server_and_cluster
    mount_path = str(directory / "metrics")
    collector = client.V1Container(name="metrics-logger", image="python:3.11", restart_policy="Always",
                                   command=[sys.executable, "-c", COLLECTOR, f"{mount_path}/m.log", "1"], volume_mounts=[metrics_volume(mount_path)])
    trial = client.V1Container(name="main", image="python:3.11", volume_mounts=[metrics_volume(mount_path)], command=[
        "sh", "-c", f"{await_collector(mount_path)}; echo loss=0.5 >> {mount_path}/m.log; sleep 0.2; echo loss=0.25 >> {mount_path}/m.log; echo done"])
    core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="followed"), spec=pod_spec([trial], [collector])))
    wait_until(lambda: core.read_namespaced_pod("followed", "default").status.init_container_statuses,
             lambda s: s and s[0].state.running, "the sidecar started", timeout=30)
    followed = core.read_namespaced_pod_log("followed", "default", container="metrics-logger", follow=True, _preload_content=False,
                                            _request_timeout=60)
    lines = followed.data.decode().splitlines()
    # It went on past the end of the pod's container, to the sidecar's own end.
    assert lines[1:] == ["loss=0.5", "loss=0.25", "collector stopped"]
    pod = core.read_namespaced_pod("followed", "default")
    assert pod.status.init_container_statuses[0].state.terminated and pod.status.phase == "Succeeded"
    main = core.read_namespaced_pod_log("followed", "default", container="main", follow=True, _preload_content=False, _request_timeout=60)
    assert main.data.decode() == "done\n"
