"""The Kubernetes API test server's discovery, ConfigMaps and custom kinds (the training operator's PyTorchJob,
Argo's Workflow…), checked with the official Python client as a program that knows only the real API would."""

import json
import sys

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kube_test_client import serve, wait_until, written_log

NS = "default"


@pytest.fixture()
def api(tmp_path):
    process, api_client = serve(tmp_path)
    yield api_client
    process.terminate()
    process.wait(5)


@pytest.fixture()
def api_without_kubeflow(tmp_path):
    process, api_client = serve(tmp_path, "--serve-kinds", "argoproj.io")
    yield api_client
    process.terminate()
    process.wait(5)


def raw(api_client, method, path, body=None, content_type="application/json"):
    """A request as any client could send it: (status, JSON body, headers)."""
    response = api_client.rest_client.request(method, f"{api_client.configuration.host}{path}",
                                              headers={"Content-Type": content_type, "Accept": "application/json"}, body=body)
    response.read()
    return response.status, json.loads(response.data or b"null"), response.headers


def conditions(job):
    return {c["type"]: c for c in job.get("status", {}).get("conditions", [])}


# -- discovery


def test_discovery_lists_what_is_served(api):
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    core = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert core["pods"].kind == "Pod" and core["pods"].singular_name == "pod" and core["pods"].namespaced
    assert "watch" in core["pods"].verbs and "pods/log" in core and core["configmaps"].kind == "ConfigMap"

    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert set(groups) >= {"batch", "kubeflow.org", "trainer.kubeflow.org", "argoproj.io", "tekton.dev"}
    assert groups["kubeflow.org"].preferred_version.group_version == "kubeflow.org/v1"
    assert groups["trainer.kubeflow.org"].versions[0].version == "v1alpha1"

    custom = client.CustomObjectsApi(api)
    kubeflow = {r["name"]: r for r in custom.get_api_resources("kubeflow.org", "v1").to_dict()["resources"]}
    assert set(kubeflow) == {"pytorchjobs", "pytorchjobs/status", "tfjobs", "tfjobs/status", "mpijobs", "mpijobs/status",
                             "xgboostjobs", "xgboostjobs/status"}
    assert (kubeflow["pytorchjobs"]["kind"], kubeflow["pytorchjobs"]["singular_name"]) == ("PyTorchJob", "pytorchjob")
    assert kubeflow["pytorchjobs/status"]["verbs"] == ["get", "patch", "update"]
    workflows = {r["name"]: r for r in custom.get_api_resources("argoproj.io", "v1alpha1").to_dict()["resources"]}
    assert workflows["workflows"]["kind"] == "Workflow"
    tekton = {r["name"] for r in custom.get_api_resources("tekton.dev", "v1").to_dict()["resources"]}
    assert "pipelineruns" in tekton

    status, body, _ = raw(api, "GET", "/apis/kubeflow.org/v2")
    assert (status, body["kind"], body["reason"]) == (404, "Status", "NotFound")


def test_a_cluster_without_kubeflow(api_without_kubeflow):
    api = api_without_kubeflow
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert "argoproj.io" in groups and "kubeflow.org" not in groups and "tekton.dev" not in groups
    for path in ("/apis/kubeflow.org/v1", "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs"):
        status, body, _ = raw(api, "GET", path)
        assert (status, body["kind"], body["code"], body["reason"]) == (404, "Status", 404, "NotFound"), path
    with pytest.raises(ApiException) as missing:
        client.CustomObjectsApi(api).create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", pytorchjob("p", {}))
    assert missing.value.status == 404


# -- ConfigMaps


def test_configmaps_hold_trial_templates(api):
    core = client.CoreV1Api(api)
    template = "apiVersion: batch/v1\nkind: Job\n"
    core.create_namespaced_config_map("kubeflow", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="trial-templates", labels={"katib.kubeflow.org/component": "trial-templates"}),
        data={"defaultTrialTemplate.yaml": template}))
    read = core.read_namespaced_config_map("trial-templates", "kubeflow")
    assert read.data == {"defaultTrialTemplate.yaml": template} and read.metadata.uid
    listed = core.list_namespaced_config_map("kubeflow", label_selector="katib.kubeflow.org/component=trial-templates")
    assert [c.metadata.name for c in listed.items] == ["trial-templates"]
    assert core.list_namespaced_config_map("default").items == []
    with pytest.raises(ApiException) as conflict:
        core.create_namespaced_config_map("kubeflow", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="trial-templates")))
    assert conflict.value.status == 409

    status, body, _ = raw(api, "POST", "/api/v1/namespaces/kubeflow/configmaps",
                          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}, "data": {"a": 1}})
    assert status == 422 and "data.a" in body["message"]

    core.delete_namespaced_config_map("trial-templates", "kubeflow")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("trial-templates", "kubeflow")
    assert gone.value.status == 404


# -- PyTorchJob

# Each replica prints what the operator told it, waits for the file WAIT_FOR names if it is given, then exits
# with the code EXIT_RANK says (0 without it).
REPORT = ("import os, time; print(' '.join(f'{k}={os.environ[k]}' for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', "
          "'PYTHONUNBUFFERED')), flush=True)\n"
          "while os.environ.get('WAIT_FOR') and not os.path.exists(os.environ['WAIT_FOR']): time.sleep(0.05)\n"
          "raise SystemExit(int(os.environ.get('EXIT_' + os.environ['RANK'], '0')))")


def replica(count, restart="OnFailure", env=None, container="pytorch", labels=None):
    return {"replicas": count, "restartPolicy": restart, "template": {
        "metadata": {"labels": labels or {}},
        "spec": {"containers": [{"name": container, "image": "docker.io/kubeflowkatib/pytorch-mnist:latest",
                                 "command": [sys.executable, "-c", REPORT], "env": env or []}]}}}


def pytorchjob(name, replicas):
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name}, "spec": {"pytorchReplicaSpecs": replicas}}


def test_a_pytorchjob_runs_its_master_and_workers(api):
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    start = custom.list_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs")["metadata"]["resourceVersion"]
    created = custom.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", pytorchjob("mnist", {
        "Master": replica(1, labels={"katib.kubeflow.org/trial": "t1"}), "Worker": replica(2)}))
    # The operator's defaults.
    assert created["spec"]["runPolicy"]["cleanPodPolicy"] == "None"
    master = created["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert master["ports"] == [{"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"}]

    job = wait_until(lambda: custom.get_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", "mnist"),
                     lambda j: conditions(j).get("Succeeded", {}).get("status") == "True", "the PyTorchJob succeeding")
    assert conditions(job)["Succeeded"]["reason"] == "PyTorchJobSucceeded"
    assert conditions(job)["Succeeded"]["message"] == "PyTorchJob mnist is successfully completed."
    assert conditions(job)["Created"]["reason"] == "PyTorchJobCreated"
    assert job["status"]["replicaStatuses"]["Master"]["succeeded"] == 1
    assert custom.get_namespaced_custom_object_status("kubeflow.org", "v1", NS, "pytorchjobs", "mnist")["status"] == job["status"]

    pods = {p.metadata.name: p for p in core.list_namespaced_pod(NS, label_selector="training.kubeflow.org/job-name=mnist").items}
    assert set(pods) == {"mnist-master-0", "mnist-worker-0", "mnist-worker-1"}
    master_pod = pods["mnist-master-0"]
    assert master_pod.metadata.labels["training.kubeflow.org/job-role"] == "master"
    assert master_pod.metadata.labels["training.kubeflow.org/replica-type"] == "master"
    assert master_pod.metadata.labels["katib.kubeflow.org/trial"] == "t1"
    assert pods["mnist-worker-1"].metadata.labels["training.kubeflow.org/replica-index"] == "1"
    assert "training.kubeflow.org/job-role" not in pods["mnist-worker-1"].metadata.labels
    owner = master_pod.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("PyTorchJob", "mnist", job["metadata"]["uid"], True)
    logs = {name: written_log(core, name, NS) for name in pods}
    # The job's own port (a free one, where the operator gives the master's pytorchjob-port), the same for every replica.
    port = logs["mnist-master-0"].split("MASTER_PORT=")[1].split()[0]
    assert port.isdigit() and 0 < int(port) < 65536
    assert logs == {"mnist-master-0": f"RANK=0 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT={port} PYTHONUNBUFFERED=1\n",
                    "mnist-worker-0": f"RANK=1 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT={port} PYTHONUNBUFFERED=1\n",
                    "mnist-worker-1": f"RANK=2 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT={port} PYTHONUNBUFFERED=1\n"}
    env = {e.name: e.value for e in master_pod.spec.containers[0].env}
    assert env["PET_MASTER_PORT"] == port

    # Foreground deletion: the job stays, with its finalizer, until its pods are gone.
    deleting = custom.delete_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", "mnist", propagation_policy="Foreground")
    assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    wait_until(lambda: core.list_namespaced_pod(NS, label_selector="training.kubeflow.org/job-name=mnist").items, lambda p: not p,
               "the pods going")
    with pytest.raises(ApiException) as gone:
        wait_until(lambda: custom.get_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", "mnist"), lambda _: False,
                   "the job going", timeout=20)
    assert gone.value.status == 404

    # Every pod was deleted before the job was: resourceVersions order the events of all kinds.
    def events(plural, group=None, version="v1"):
        lister = (lambda **kw: custom.list_namespaced_custom_object(group, version, NS, plural, **kw)) if group else \
            (lambda **kw: core.list_namespaced_pod(NS, **kw))
        seen = []
        for event in watch.Watch().stream(lister, resource_version=start, timeout_seconds=2):
            metadata = event["raw_object"]["metadata"]
            seen.append((event["type"], metadata["name"], int(metadata["resourceVersion"])))
        return seen
    job_events = events("pytorchjobs", "kubeflow.org")
    pod_events = events("pods")
    assert [t for t, _, _ in job_events][0] == "ADDED" and job_events[-1][0] == "DELETED"
    assert "MODIFIED" in [t for t, _, _ in job_events]
    pods_deleted = [rv for t, name, rv in pod_events if t == "DELETED"]
    assert len(pods_deleted) == 3 and max(pods_deleted) < job_events[-1][2]


def test_pytorchjobs_running_at_once_have_master_ports_of_their_own(api, tmp_path):
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    # Every replica of both jobs waits until the test has read both masters' ports, so that the jobs run at once.
    release = [{"name": "WAIT_FOR", "value": str(tmp_path / "both-started")}]
    for name in ("first", "second"):
        custom.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", pytorchjob(name, {
            "Master": replica(1, env=release), "Worker": replica(1, env=release)}))
    ports = {}
    for name in ("first", "second"):
        for pod in (f"{name}-master-0", f"{name}-worker-0"):
            log = written_log(core, pod, NS)
            ports.setdefault(name, set()).add(log.split("MASTER_PORT=")[1].split()[0])
    assert len(ports["first"]) == 1 and len(ports["second"]) == 1 and ports["first"] != ports["second"]
    (tmp_path / "both-started").touch()
    for name in ("first", "second"):
        wait_until(lambda: custom.get_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", name),
                   lambda j: conditions(j).get("Succeeded", {}).get("status") == "True", f"PyTorchJob {name} succeeding")


def test_a_pytorchjob_fails_when_a_worker_fails_and_may_not_restart(api, tmp_path):
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    # The master runs until the test ends it, so that only the worker's failure can end the job.
    custom.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", pytorchjob("broken", {
        "Master": replica(1, restart="Never", env=[{"name": "WAIT_FOR", "value": str(tmp_path / "never")}]),
        "Worker": replica(1, restart="Never", env=[{"name": "EXIT_1", "value": "1"}])}))
    job = wait_until(lambda: custom.get_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", "broken"),
                     lambda j: "Failed" in conditions(j) or "Succeeded" in conditions(j), "the PyTorchJob ending")
    failed = conditions(job)["Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "PyTorchJobFailed")
    assert failed["message"] == "PyTorchJob broken is failed because 1 Worker replica(s) failed."
    assert job["status"]["replicaStatuses"]["Worker"]["failed"] == 1
    assert core.read_namespaced_pod("broken-master-0", NS).status.phase == "Running"  # cleanPodPolicy None leaves it be
    custom.delete_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", "broken")
    wait_until(lambda: core.list_namespaced_pod(NS, label_selector="training.kubeflow.org/job-name=broken").items, lambda p: not p,
               "the garbage collector deleting the job's pods")


# A worker that fails on its first run and succeeds on its second (it leaves a file behind the first time).
FLAKY = ("import os, sys; mark = os.environ['MARK']\n"
         "if not os.path.exists(mark): open(mark, 'w').close(); sys.exit(2)\n"
         "open(mark + '.done', 'w').close()")


def test_a_failed_replica_that_may_restart_is_made_again(api, tmp_path):
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    mark = str(tmp_path / "worker-ran")
    flaky = replica(1, restart="OnFailure", env=[{"name": "MARK", "value": mark}])
    flaky["template"]["spec"]["containers"][0]["command"] = [sys.executable, "-c", FLAKY]
    start = core.list_namespaced_pod(NS).metadata.resource_version
    # The master waits for the worker's second run.
    custom.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", pytorchjob("flaky", {
        "Master": replica(1, env=[{"name": "WAIT_FOR", "value": mark + ".done"}]), "Worker": flaky}))
    job = wait_until(lambda: custom.get_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", "flaky"),
                     lambda j: "Failed" in conditions(j) or "Succeeded" in conditions(j), "the PyTorchJob ending")
    assert conditions(job)["Succeeded"]["status"] == "True" and "Failed" not in conditions(job)
    assert conditions(job)["Running"]["status"] == "False"  # the operator turns Running False when the job ends
    worker = core.read_namespaced_pod("flaky-worker-0", NS)
    assert worker.status.phase == "Succeeded" and worker.spec.restart_policy == "OnFailure"
    # The failed pod was deleted and made again (the master running meanwhile, Running replaced Restarting at once).
    runs = []
    for event in watch.Watch().stream(core.list_namespaced_pod, NS, label_selector="training.kubeflow.org/replica-type=worker",
                                      resource_version=start, timeout_seconds=2):
        if event["type"] in ("ADDED", "DELETED"):
            runs.append((event["type"], event["object"].metadata.uid))
    assert [t for t, _ in runs] == ["ADDED", "DELETED", "ADDED"] and runs[0][1] == runs[1][1] != runs[2][1]
    assert runs[2][1] == worker.metadata.uid


def test_malformed_pytorchjobs_are_refused_naming_the_field(api):
    custom = client.CustomObjectsApi(api)
    bad = pytorchjob("bad", {"Worker": replica(1)})
    bad["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "two"
    with pytest.raises(ApiException) as invalid:
        custom.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", bad)
    body = json.loads(invalid.value.body)
    assert invalid.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('PyTorchJob.kubeflow.org "bad" is invalid: spec.pytorchReplicaSpecs.Worker.replicas: ')
    assert "must be of type integer" in body["message"]
    assert body["details"]["causes"][0]["field"] == "spec.pytorchReplicaSpecs.Worker.replicas"

    status, body, _ = raw(api, "POST", "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs",
                          {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "empty"}, "spec": {}})
    assert (status, body["message"]) == (422, 'PyTorchJob.kubeflow.org "empty" is invalid: spec.pytorchReplicaSpecs: Required value')

    misspelt = pytorchjob("misspelt", {"Worker": replica(1)})
    misspelt["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["comand"] = ["python3"]
    status, body, _ = raw(api, "POST", "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs", misspelt)
    assert status == 422 and "spec.pytorchReplicaSpecs.Worker.template.spec.containers.0" in body["message"] and "comand" in body["message"]

    # Unknown fields of the job itself are dropped with a warning, or refused when the client asks for strict validation.
    extra = pytorchjob("extra", {"Worker": replica(1)})
    extra["spec"]["runPolicy"] = {"cleanPodPolicy": "All", "backofLimit": 3}
    status, body, _ = raw(api, "POST", "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs?fieldValidation=Strict", extra)
    assert (status, body["reason"]) == (400, "BadRequest") and 'unknown field "spec.runPolicy.backofLimit"' in body["message"]
    status, body, headers = raw(api, "POST", "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs", extra)
    assert status == 201 and "backofLimit" not in body["spec"]["runPolicy"]
    assert 'unknown field \\"spec.runPolicy.backofLimit\\"' in headers["Warning"]

    # What the operator's webhook refuses: no container named pytorch.
    unnamed = pytorchjob("unnamed", {"Worker": replica(1, container="trainer")})
    with pytest.raises(ApiException) as denied:
        custom.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", unnamed)
    assert denied.value.status == 403
    assert "spec.pytorchReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name pytorch" \
        in json.loads(denied.value.body)["message"]


def test_watching_a_custom_kind(api):
    custom = client.CustomObjectsApi(api)
    start = custom.list_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns")["metadata"]["resourceVersion"]
    run = {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "run-1", "labels": {"trial": "a"}},
           "spec": {"pipelineRef": {"name": "train"}}, "status": {"conditions": [{"type": "Succeeded", "status": "True"}]}}
    created = custom.create_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns", run)
    assert "status" not in created  # dropped on create: the kind has a status subresource
    other = dict(run, metadata={"name": "run-2", "labels": {"trial": "b"}})
    custom.create_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns", other)
    patched = custom.patch_namespaced_custom_object_status("tekton.dev", "v1", NS, "pipelineruns", "run-1", {
        "status": {"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]}})
    assert patched["status"]["conditions"][0]["reason"] == "Running"
    custom.delete_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns", "run-1")
    seen = []
    for event in watch.Watch().stream(custom.list_namespaced_custom_object, "tekton.dev", "v1", NS, "pipelineruns",
                                      label_selector="trial=a", resource_version=start, timeout_seconds=2):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
    assert seen == [("ADDED", "run-1"), ("MODIFIED", "run-1"), ("DELETED", "run-1")]
    listed = custom.list_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns")
    assert listed["kind"] == "PipelineRunList" and [i["metadata"]["name"] for i in listed["items"]] == ["run-2"]

    # A status written over a stale resourceVersion is refused.
    stale = custom.get_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns", "run-2")
    custom.replace_namespaced_custom_object_status("tekton.dev", "v1", NS, "pipelineruns", "run-2", dict(stale, status={"x": 1}))
    with pytest.raises(ApiException) as conflict:
        custom.replace_namespaced_custom_object_status("tekton.dev", "v1", NS, "pipelineruns", "run-2", dict(stale, status={"x": 2}))
    assert conflict.value.status == 409
    assert custom.get_namespaced_custom_object_status("tekton.dev", "v1", NS, "pipelineruns", "run-2")["status"] == {"x": 1}


def test_a_trainjob_needs_its_runtime(api):
    custom = client.CustomObjectsApi(api)
    job = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "tj"}, "spec": {"trainer": {}}}
    with pytest.raises(ApiException) as invalid:
        custom.create_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", NS, "trainjobs", job)
    assert invalid.value.status == 422
    assert json.loads(invalid.value.body)["message"] == 'TrainJob.trainer.kubeflow.org "tj" is invalid: spec.runtimeRef: Required value'
    job["spec"]["runtimeRef"] = {"name": "torch-distributed"}
    assert custom.create_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", NS, "trainjobs", job)["metadata"]["uid"]


# -- Argo Workflow


def workflow(name, entry, templates):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": name},
            "spec": {"entrypoint": entry, "templates": templates}}


def container_template(name, code):
    return {"name": name, "container": {"image": "python:3.11", "command": [sys.executable, "-c", f"print('{name}'); raise SystemExit({code})"]}}


def test_workflows_run_their_steps(api):
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", workflow("single", "train", [
        container_template("train", 0)]))
    custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", workflow("steps", "main", [
        {"name": "main", "steps": [[{"name": "prepare", "template": "ok"}], [{"name": "train", "template": "fail"}],
                                   [{"name": "never", "template": "ok"}]]},
        container_template("ok", 0), container_template("fail", 3)]))

    def ended(name):
        return wait_until(lambda: custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", name),
                          lambda w: w.get("status", {}).get("phase") in ("Succeeded", "Failed", "Error"), f"workflow {name} ending")

    single = ended("single")
    assert single["status"]["phase"] == "Succeeded" and single["status"]["progress"] == "1/1"
    assert single["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"
    node = single["status"]["nodes"]["single"]
    assert (node["type"], node["phase"], node["templateName"], node["outputs"]["exitCode"]) == ("Pod", "Succeeded", "train", "0")
    pods = core.list_namespaced_pod(NS, label_selector="workflows.argoproj.io/workflow=single").items
    assert [p.metadata.name for p in pods] == ["single"] and pods[0].spec.containers[0].name == "main"
    assert core.read_namespaced_pod_log("single", NS) == "train\n"

    steps = ended("steps")
    assert steps["status"]["phase"] == "Failed"
    nodes = {n["displayName"]: n for n in steps["status"]["nodes"].values()}
    assert nodes["train"]["message"] == "Error (exit code 3)" and nodes["prepare"]["phase"] == "Succeeded"
    assert "never" not in nodes
    assert steps["status"]["message"] == f"child '{nodes['train']['id']}' failed"
    names = sorted(p.metadata.name for p in core.list_namespaced_pod(NS, label_selector="workflows.argoproj.io/workflow=steps").items)
    assert len(names) == 2 and all(n.startswith(("steps-ok-", "steps-fail-")) for n in names)

    custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", workflow("lost", "nowhere", [
        container_template("train", 0)]))
    lost = ended("lost")
    assert lost["status"]["phase"] == "Failed" and "nowhere" in lost["status"]["message"]
