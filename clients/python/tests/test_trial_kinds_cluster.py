"""Trial templates of any kind, through knobd, against the Kubernetes API test server (Tests/kube-apiserver): an
Argo Workflow ended by Katib's conditions for Argo, a PyTorchJob (the server plays the training operator) ended by
Katib's defaults for it, a template kept in a ConfigMap, the trial-metadata values Katib substitutes, and the faults:
a kind the cluster does not serve, a failure condition met, a condition never met, and knobd killed mid-trial."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml
from kubernetes import client as k8s, config

from knob_client import KnobClient

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KNOB = os.path.join(os.path.dirname(os.environ.get("KNOBD") or os.path.join(REPO, ".build", "debug", "knobd")), "knob")


@pytest.fixture
def cluster(tmp_path, start_kube_cluster):
    return start_kube_cluster(tmp_path / "cluster")


def api(cluster_dir):
    config.load_kube_config(config_file=str(cluster_dir / "kubeconfig"))
    return k8s.ApiClient()


def custom(cluster_dir):
    return k8s.CustomObjectsApi(api(cluster_dir))


def created(cluster_dir, kind):
    with open(cluster_dir / "created.jsonl") as f:
        return [r for r in map(json.loads, f) if r["object"]["kind"] == kind]


# A trainer that prints EPOCHS lines of both metrics, a little apart; its values follow from lr.
EPOCHS = 3
TRAINER = textwrap.dedent("""
    import sys, time
    lr = float(sys.argv[1])
    for epoch in range(1, %d + 1):
        print(f"Epoch {epoch}. accuracy={0.5 + lr * epoch:.6f} - loss={1 / (epoch + lr):.6f}", flush=True)
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.1)
    """ % EPOCHS)


def accuracies(lr):
    return [round(0.5 + lr * epoch, 6) for epoch in range(1, EPOCHS + 1)]


def experiment(name, template, trials=2, parallel=1, extra=""):
    """A Katib experiment over lr whose trialTemplate is `template` (YAML text, indented as under trialTemplate)."""
    return textwrap.dedent("""
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: %s}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
          algorithm: {algorithmName: random}
          parallelTrialCount: %d
          maxTrialCount: %d
          maxFailedTrialCount: %d
          parameters:
            - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.1"}}
        %s
          trialTemplate:
        %s
        """) % (name, parallel, trials, trials, textwrap.indent(textwrap.dedent(extra), "  "),
                textwrap.indent(textwrap.dedent(template).strip(), "    "))


def wait_for(client, name, timeout=240):
    deadline = time.monotonic() + timeout
    while client.is_experiment_running(name):
        assert time.monotonic() < deadline, client.get_experiment(name)
        time.sleep(0.3)
    return client.get_experiment(name), client.list_trials(name)


def lr_of(trial):
    return float(next(a["value"] for a in trial["assignments"] if a["name"] == "lr"))


def reports(client, name, trial, metric="accuracy"):
    return [r["value"] for r in client.get_trial_metrics(name, trial["name"]) if r["name"] == metric]


WORKFLOW = """
    primaryContainerName: main
    primaryPodLabels: {katib.kubeflow.org/model-training: "true"}
    successCondition: status.[@this].#(phase=="Succeeded")#
    failureCondition: status.[@this].#(phase=="Failed")#
    trialParameters: [{name: learningRate, reference: lr}]
    trialSpec:
      apiVersion: argoproj.io/v1alpha1
      kind: Workflow
      spec:
        entrypoint: hp
        templates:
          - name: hp
            steps:
              - - {name: prepare, template: prepare}
              - - {name: train, template: train}
          - name: prepare
            container: {image: python:3.11, command: [python3, -c, "print('accuracy=0.001 from the data step')"]}
          - name: train
            metadata: {labels: {katib.kubeflow.org/model-training: "true"}}
            container:
              name: model-training
              image: python:3.11
              command: [python3, -c, %s, "${trialParameters.learningRate}"]
    """


def test_a_workflow_runs_with_katibs_conditions_and_its_primary_pods_log(cluster, make_knobd):
    client = KnobClient(home=make_knobd(["--kubeconfig", str(cluster / "kubeconfig")]))
    client.create_experiment(yaml.safe_load(experiment("argo", WORKFLOW % json.dumps(TRAINER))))
    record, trials = wait_for(client, "argo")
    assert [t["state"] for t in trials] == ["Succeeded", "Succeeded"], [t["message"] for t in trials]
    for trial in trials:
        # Only the training pod's log is read: the data step's decoy is not among the reports.
        assert reports(client, "argo", trial) == pytest.approx(accuracies(lr_of(trial))), trial["name"]
    workflows = created(cluster, "Workflow")
    assert len(workflows) == 2 and all(r["valid"] for r in workflows)
    labels = workflows[0]["object"]["metadata"]["labels"]
    assert labels["katib.kubeflow.org/trial"] == trials[0]["name"] or labels["katib.kubeflow.org/trial"] == trials[1]["name"]
    # Two pods per Workflow ran (the steps), and nothing is left: the Workflows are deleted, their pods with them.
    assert len(created(cluster, "Pod")) == 4
    left = custom(cluster).list_namespaced_custom_object("argoproj.io", "v1alpha1", "default", "workflows")["items"]
    assert left == []
    assert k8s.CoreV1Api(api(cluster)).list_namespaced_pod("default").items == []


def test_a_met_failure_condition_fails_the_trial_with_the_objects_message(cluster, make_knobd):
    client = KnobClient(home=make_knobd(["--kubeconfig", str(cluster / "kubeconfig")]))
    crash = "import sys; print('accuracy=0.2', flush=True); sys.exit(3)"
    client.create_experiment(yaml.safe_load(experiment("argo-fails", WORKFLOW % json.dumps(crash), trials=1)))
    _, [trial] = wait_for(client, "argo-fails")
    assert trial["state"] == "Failed", trial
    # Argo's own message for the failed step, as the Workflow's status says it.
    assert "argo-fails" in trial["message"] and "failed" in trial["message"], trial["message"]
    assert "child" in trial["message"] or "exit code 3" in trial["message"], trial["message"]


def test_a_condition_never_met_ends_at_the_trials_timeout_and_its_object_is_deleted(cluster, make_knobd):
    client = KnobClient(home=make_knobd(["--kubeconfig", str(cluster / "kubeconfig")]))
    never = (WORKFLOW % json.dumps(TRAINER)).replace('#(phase=="Succeeded")#', '#(phase=="Approved")#').replace(
        '#(phase=="Failed")#', '#(phase=="Rejected")#')
    client.create_experiment(yaml.safe_load(experiment("argo-never", "timeoutSeconds: 4\n" + textwrap.dedent(never).strip(), trials=1)))
    _, [trial] = wait_for(client, "argo-never")
    assert trial["state"] == "Failed" and trial["reason"] == "DeadlineExceeded", trial
    # The metrics the trial printed before its end are kept.
    assert reports(client, "argo-never", trial) == pytest.approx(accuracies(lr_of(trial)))
    deadline = time.monotonic() + 30
    while custom(cluster).list_namespaced_custom_object("argoproj.io", "v1alpha1", "default", "workflows")["items"]:
        assert time.monotonic() < deadline, "the Workflow of a timed-out trial was not deleted"
        time.sleep(0.2)


JOB_TEMPLATE = textwrap.dedent("""
    apiVersion: batch/v1
    kind: Job
    metadata:
      labels: {team: vision}
      annotations: {owner: ml-platform}
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: training-container
              image: python:3.11
              command: [python3, -c, %s, "${trialParameters.learningRate}"]
              env:
                - {name: TRIAL_NAME, value: "${trialParameters.trialName}"}
                - {name: TRIAL_NAMESPACE, value: "${trialParameters.trialNamespace}"}
                - {name: TRIAL_KIND, value: "${trialParameters.kind}"}
                - {name: TRIAL_API_VERSION, value: "${trialParameters.apiVersion}"}
                - {name: TEAM, value: "${trialParameters.team}"}
                - {name: OWNER, value: "${trialParameters.owner}"}
    """) % json.dumps(TRAINER)

METADATA_PARAMETERS = """
    trialParameters:
      - {name: learningRate, reference: lr}
      - {name: trialName, reference: "${trialSpec.Name}"}
      - {name: trialNamespace, reference: "${trialSpec.Namespace}"}
      - {name: kind, reference: "${trialSpec.Kind}"}
      - {name: apiVersion, reference: "${trialSpec.APIVersion}"}
      - {name: team, reference: "${trialSpec.Labels[team]}"}
      - {name: owner, reference: "${trialSpec.Annotations[owner]}"}
    """


def test_a_template_kept_in_a_configmap_runs_with_katibs_metadata_values(cluster, make_knobd):
    core = k8s.CoreV1Api(api(cluster))
    core.create_namespaced_config_map("kubeflow", k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(name="trial-templates"), data={"defaultTrialTemplate.yaml": JOB_TEMPLATE}))
    template = METADATA_PARAMETERS + """
    primaryContainerName: training-container
    successCondition: status.conditions.#(type=="Complete")#|#(status=="True")#
    failureCondition: status.conditions.#(type=="Failed")#|#(status=="True")#
    configMap:
      configMapName: trial-templates
      configMapNamespace: kubeflow
      templatePath: defaultTrialTemplate.yaml
    """
    home = make_knobd(["--kubeconfig", str(cluster / "kubeconfig")])
    client = KnobClient(home=home)
    client.create_experiment(yaml.safe_load(experiment("from-configmap", template)))
    _, trials = wait_for(client, "from-configmap")
    assert [t["state"] for t in trials] == ["Succeeded", "Succeeded"], [t["message"] for t in trials]
    for trial in trials:
        assert reports(client, "from-configmap", trial) == pytest.approx(accuracies(lr_of(trial)))
    # What Katib substitutes: the trial's name and namespace, the trialSpec's kind, apiVersion, label and annotation.
    jobs = {r["object"]["metadata"]["name"]: r for r in created(cluster, "Job")}
    assert sorted(jobs) == sorted(t["name"] for t in trials)
    for name, record in jobs.items():
        assert record["valid"], record["message"]
        env = {e["name"]: e.get("value") for e in record["object"]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert (env["TRIAL_NAME"], env["TRIAL_NAMESPACE"], env["TRIAL_KIND"], env["TRIAL_API_VERSION"], env["TEAM"], env["OWNER"]) == (
            name, "default", "Job", "batch/v1", "vision", "ml-platform")

    # A ConfigMap that is not there fails the experiment at its start, saying which and how to make it.
    client.create_experiment(yaml.safe_load(experiment("no-configmap", template.replace("trial-templates", "missing-templates"))))
    record, trials = wait_for(client, "no-configmap")
    assert (record["status"], record["reason"]) == ("Failed", "InvalidSpec"), record
    assert "no ConfigMap missing-templates in namespace kubeflow" in record["message"], record
    assert trials == []


PYTORCHJOB = """
    primaryContainerName: pytorch
    trialParameters: [{name: learningRate, reference: lr}]
    trialSpec:
      apiVersion: kubeflow.org/v1
      kind: PyTorchJob
      spec:
        pytorchReplicaSpecs:
          Master:
            replicas: 1
            restartPolicy: OnFailure
            template:
              spec:
                containers:
                  - name: pytorch
                    image: python:3.11
                    command: [python3, -c, %s, "${trialParameters.learningRate}", "%s"]
          Worker:
            replicas: 2
            restartPolicy: OnFailure
            template:
              spec:
                containers:
                  - name: pytorch
                    image: python:3.11
                    command: [python3, -c, "print('accuracy=0.0001 from a worker')"]
    """


def test_a_kind_the_cluster_does_not_serve_is_refused_at_the_start(tmp_path, make_knobd, start_kube_cluster):
    start_kube_cluster(tmp_path / "cluster", "--serve-kinds", "argoproj.io")
    kubeconfig = str(tmp_path / "cluster" / "kubeconfig")
    client = KnobClient(home=make_knobd(["--kubeconfig", kubeconfig]))
    spec = experiment("unserved", PYTORCHJOB % (json.dumps(TRAINER), "0.1"))
    client.create_experiment(yaml.safe_load(spec))
    record, trials = wait_for(client, "unserved")
    assert (record["status"], record["reason"]) == ("Failed", "InvalidSpec"), record
    assert "kubeflow.org/v1 PyTorchJob is not served by this cluster: install the Kubeflow training operator" in record["message"]
    assert trials == []
    # knob validate --render asks the same cluster, and says the same, in its table and in JSON.
    (tmp_path / "spec.yaml").write_text(spec)
    table = subprocess.run([KNOB, "validate", "-f", str(tmp_path / "spec.yaml"), "--render", "--kubeconfig", kubeconfig],
                           capture_output=True, text=True)
    assert table.returncode == 1 and "is not served by this cluster" in table.stderr, table
    as_json = subprocess.run([KNOB, "validate", "-f", str(tmp_path / "spec.yaml"), "--render", "--kubeconfig", kubeconfig, "-o", "json"],
                             capture_output=True, text=True)
    result = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and result["valid"] is False, as_json
    assert result["problems"][0]["path"] == "spec.trialTemplate.trialSpec", result


def test_a_pytorchjob_ends_by_katibs_defaults_and_its_masters_log_is_read(cluster, make_knobd):
    client = KnobClient(home=make_knobd(["--kubeconfig", str(cluster / "kubeconfig")]))
    client.create_experiment(yaml.safe_load(experiment("ptj", PYTORCHJOB % (json.dumps(TRAINER), "0.1"), trials=2, parallel=2)))
    _, trials = wait_for(client, "ptj")
    assert [t["state"] for t in trials] == ["Succeeded", "Succeeded"], [t["message"] for t in trials]
    for trial in trials:
        # The master's reports, each once; the workers' decoys are not read.
        assert reports(client, "ptj", trial) == pytest.approx(accuracies(lr_of(trial)))
    jobs = created(cluster, "PyTorchJob")
    assert len(jobs) == 2 and all(r["valid"] for r in jobs), [r["message"] for r in jobs]
    replicas = jobs[0]["object"]["spec"]["pytorchReplicaSpecs"]
    for replica in replicas.values():
        # knob's labels and environment are in every replica's pod template.
        assert replica["template"]["metadata"]["labels"]["katib.kubeflow.org/trial"] == jobs[0]["object"]["metadata"]["name"]
        env = {e["name"] for e in replica["template"]["spec"]["containers"][0]["env"]}
        assert {"KATIB_TRIAL_NAME", "KNOB_TRIAL"} <= env
    pods = created(cluster, "Pod")
    assert len(pods) == 6, [p["object"]["metadata"]["name"] for p in pods]
    assert custom(cluster).list_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs")["items"] == []


def start_knobd(home, kubeconfig):
    environment = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    environment["HOME"] = home
    knobd = os.environ.get("KNOBD") or os.path.join(REPO, ".build", "debug", "knobd")
    log = open(os.path.join(home, "knobd.log"), "a")
    process = subprocess.Popen([knobd, "--home", home, "--kubeconfig", kubeconfig], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, env=environment)
    deadline = time.monotonic() + 15
    while not os.path.exists(os.path.join(home, "knobd.sock")):
        assert process.poll() is None and time.monotonic() < deadline, open(os.path.join(home, "knobd.log")).read()
        time.sleep(0.05)
    return process


def test_a_pytorchjob_is_adopted_after_knobd_is_killed_and_no_line_is_counted_twice(cluster, tmp_path):
    home = str(tmp_path / "home")
    os.makedirs(home)
    kubeconfig = str(cluster / "kubeconfig")
    daemon = start_knobd(home, kubeconfig)
    try:
        client = KnobClient(home=home)
        client.create_experiment(yaml.safe_load(experiment("ptj-kill", PYTORCHJOB % (json.dumps(TRAINER), "1.5"), trials=1)))
        # Killed once the master has printed its first epoch (its log is being followed).
        deadline = time.monotonic() + 120
        while not any(reports(client, "ptj-kill", t) for t in client.list_trials("ptj-kill")):
            assert time.monotonic() < deadline, client.get_experiment("ptj-kill")
            time.sleep(0.1)
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        os.remove(os.path.join(home, "knobd.sock"))
        daemon = start_knobd(home, kubeconfig)
        client = KnobClient(home=home)
        _, [trial] = wait_for(client, "ptj-kill")
        assert trial["state"] == "Succeeded", trial
        assert reports(client, "ptj-kill", trial) == pytest.approx(accuracies(lr_of(trial)))
        assert len(created(cluster, "PyTorchJob")) == 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)


def torch_python():
    """An interpreter whose torch works with its NumPy: this one, else Debian's (python3-torch is Debian's, built against
    Debian's NumPy 1.x, which the test environment's NumPy 2 shadows); None when there is none."""
    for python in dict.fromkeys(p for p in (sys.executable, "/usr/bin/python3") if p):
        if subprocess.run([python, "-c", "import numpy, torch; torch.from_numpy(numpy.zeros(1))"], capture_output=True).returncode == 0:
            return python
    return None


def test_the_pytorchjob_example_trains_three_trials_with_a_master_and_two_workers(cluster, make_knobd):
    """examples/mnist/experiment-pytorchjob.yaml as it is, but for where the trainer is here (the test cluster's
    containers are this machine's processes) and a subset of Fashion-MNIST, so that a trial takes seconds."""
    python = torch_python()
    if python is None:
        pytest.skip("no Python here can import torch: install Debian's python3-torch (.ci/install-deps does)")
    with open(os.path.join(REPO, "examples", "mnist", "experiment-pytorchjob.yaml")) as f:
        spec = yaml.safe_load(f)
    replicas = spec["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]
    for replica in replicas.values():
        container = replica["template"]["spec"]["containers"][0]
        command = container["command"]
        assert command[:2] == ["python3", "/opt/knob/train_torch.py"], command
        container["command"] = [python, os.path.join(REPO, "examples", "mnist", "train_torch.py")] + command[2:] + [
            "--train-limit=2000", "--test-limit=1000", "--timeout=120"]
    client = KnobClient(home=make_knobd(["--kubeconfig", str(cluster / "kubeconfig")]))
    client.create_experiment(spec)
    name = spec["metadata"]["name"]
    record, trials = wait_for(client, name, timeout=600)
    assert record["status"] == "Succeeded", record
    assert len(trials) == 3 and [t["state"] for t in trials] == ["Succeeded"] * 3, [t["message"] for t in trials]
    for trial in trials:
        # The objective comes from the master's log: one accuracy and one loss per epoch, each once.
        accuracy = reports(client, name, trial)
        assert len(accuracy) == 2 and len(reports(client, name, trial, "loss")) == 2, client.get_trial_metrics(name, trial["name"])
        assert all(0 < a <= 1 for a in accuracy) and trial["objectiveValue"] == pytest.approx(accuracy[-1])
    # Each trial's job made its three pods (a gloo group of three only trains when all three join it).
    jobs = created(cluster, "PyTorchJob")
    assert sorted(j["object"]["metadata"]["name"] for j in jobs) == sorted(t["name"] for t in trials)
    assert all(j["valid"] for j in jobs), [j["message"] for j in jobs]
    pods = sorted(p["object"]["metadata"]["name"] for p in created(cluster, "Pod"))
    assert pods == sorted(f"{t['name']}-{role}" for t in trials for role in ("master-0", "worker-0", "worker-1")), pods
    # Nothing is left behind: the jobs are deleted, their pods with them.
    deadline = time.monotonic() + 30
    while (custom(cluster).list_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs")["items"]
           or k8s.CoreV1Api(api(cluster)).list_namespaced_pod("default").items):
        assert time.monotonic() < deadline, "objects left behind"
        time.sleep(0.2)
