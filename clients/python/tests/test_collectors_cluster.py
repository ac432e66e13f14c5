"""Katib's File, TensorFlowEvent and Custom metrics collectors on Kubernetes trials, through knobd, against the
Kubernetes API test server (Tests/kube-apiserver): knob adds the collector as a native sidecar sharing an emptyDir
with the trial's container, and reads the sidecar's log. The server validates every object with the official
schemas, runs each container's command in a mount namespace of its own (the emptyDir bound at its mount path),
and stops sidecars after the trial's containers, as a kubelet does."""

import json
import os
import textwrap
import time

import pytest
import yaml
from kubernetes import client as k8s, config

from knob_client import KnobClient

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
EPOCHS = 3


@pytest.fixture
def cluster(tmp_path, start_kube_cluster):
    return start_kube_cluster(tmp_path / "cluster")


def values(lr, epoch):
    """What a trainer with learning rate `lr` reports at `epoch`."""
    return {"accuracy": round(0.5 + lr * epoch, 6), "loss": round(1.0 / (epoch + lr), 6)}


# Each trainer writes EPOCHS reports of both metrics where its collector reads them, a little apart, and prints
# decoys to its own output, which a File collector does not read.
TRAINERS = {
    "text": """
        import os, sys, time
        lr = float(sys.argv[1])
        os.makedirs("/var/log/katib", exist_ok=True)
        with open("/var/log/katib/metrics.log", "a") as f:
            for epoch in range(1, EPOCHS + 1):
                v = values(lr, epoch)
                print(f"accuracy=9 loss=9")
                for name in ("accuracy", "loss"):
                    f.write(f"{{metricName: {name}, metricValue: {v[name]}}}\\n")
                f.flush()
                time.sleep(0.1)
        """,
    "json": """
        import json, sys, time
        lr = float(sys.argv[1])
        with open("/var/log/katib/metrics.json", "a") as f:
            for epoch in range(1, EPOCHS + 1):
                f.write(json.dumps(dict(values(lr, epoch), epoch=epoch)) + "\\n")
                f.flush()
                time.sleep(0.1)
        """,
    "tfevent": """
        import sys
        from tensorboardX import SummaryWriter
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        lr = float(sys.argv[1])
        writer = SummaryWriter("/var/log/katib/tfevent")
        for epoch in range(1, EPOCHS + 1):
            v = values(lr, epoch)
            writer.add_scalar("accuracy", v["accuracy"], epoch)
            # TF2 style: a scalar tensor with the scalars plugin's metadata rather than a simple value.
            metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
            summary = Summary(value=[Summary.Value(tag="loss", tensor=TensorProto(dtype=1, float_val=[v["loss"]]), metadata=metadata)])
            writer._get_file_writer().add_summary(summary, epoch)
            writer.flush()
        writer.close()
        """,
    "custom": """
        import sys, time
        lr = float(sys.argv[1])
        with open("/out/raw.txt", "a") as f:
            for epoch in range(1, EPOCHS + 1):
                v = values(lr, epoch)
                f.write(f"{v['accuracy']} {v['loss']}\\n")
                f.flush()
                time.sleep(0.1)
        """,
    "never": """
        print("trained, but wrote no metrics")
        """,
    "crash": """
        import sys
        sys.exit("the training data is not where it should be")
        """,
}

# The Custom collector: the user's own container, which turns the trainer's raw lines into name=value lines and,
# stopped by the kubelet, reads once more and ends.
CUSTOM_COLLECTOR = """
import os, signal, time
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
offset = 0
while True:
    last = bool(stopping)
    if os.path.exists("/out/raw.txt"):
        with open("/out/raw.txt") as f:
            f.seek(offset)
            for line in f.readlines():
                accuracy, loss = line.split()
                print(f"accuracy={accuracy}", flush=True)
                print(f"loss={loss}", flush=True)
            offset = f.tell()
    if last:
        break
    time.sleep(0.1)
"""

COLLECTORS = {
    "text": """
        collector: {kind: File}
        source:
          fileSystemPath: {path: /var/log/katib/metrics.log, kind: File, format: TEXT}
          filter:
            metricsFormat: ["{metricName: ([\\\\w|-]+), metricValue: ((-?\\\\d+)(\\\\.\\\\d+)?)}"]
        """,
    "json": """
        collector: {kind: File}
        source:
          fileSystemPath: {path: /var/log/katib/metrics.json, kind: File, format: JSON}
        """,
    "tfevent": """
        collector: {kind: TensorFlowEvent}
        source:
          fileSystemPath: {path: /var/log/katib/tfevent, kind: Directory}
        """,
    "custom": """
        collector:
          kind: Custom
          customCollector:
            name: my-collector
            image: example.com/my-collector:1
            command: [python3, -c, %s]
        source:
          fileSystemPath: {path: /out, kind: Directory}
        """ % json.dumps(CUSTOM_COLLECTOR),
    "crash": """
        collector: {kind: File}
        source:
          fileSystemPath: {path: /var/log/katib/metrics.log, kind: File}
        """,
    "never": """
        collector: {kind: File}
        source:
          fileSystemPath: {path: /var/log/katib/metrics.log, kind: File}
        """,
}


def experiment(name, kind, trials=2):
    prelude = "EPOCHS = %d\n%s\n" % (EPOCHS, textwrap.dedent('''
        def values(lr, epoch):
            return {"accuracy": round(0.5 + lr * epoch, 6), "loss": round(1.0 / (epoch + lr), 6)}
        '''))
    program = prelude + textwrap.dedent(TRAINERS[kind])
    collector = textwrap.indent(textwrap.dedent(COLLECTORS[kind]).strip(), "    ")
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
          metricsCollectorSpec:
        %s
          trialTemplate:
            retain: true
            primaryContainerName: training-container
            trialParameters: [{name: learningRate, reference: lr}]
            trialSpec:
              apiVersion: batch/v1
              kind: Job
              spec:
                backoffLimit: 0
                template:
                  spec:
                    restartPolicy: Never
                    containers:
                      - name: training-container
                        image: docker.io/library/python:3.11-slim
                        command: [python3, -c, %s, "${trialParameters.learningRate}"]
        """) % (name, min(2, trials), trials, trials, collector, json.dumps(program))


def run(client, name, kind, trials=2):
    client.create_experiment(yaml.safe_load(experiment(name, kind, trials)))
    deadline = time.monotonic() + 240
    while client.is_experiment_running(name) or not client.list_trials(name):
        assert time.monotonic() < deadline, client.get_experiment(name)
        time.sleep(0.5)
    return client.list_trials(name)


def created(cluster_dir, kind):
    with open(cluster_dir / "created.jsonl") as f:
        return [r for r in map(json.loads, f) if r["object"]["kind"] == kind]


@pytest.mark.parametrize("kind", ["text", "json", "tfevent", "custom"])
def test_each_collector_reads_what_the_trainer_wrote(cluster, make_knobd, kind):
    home = make_knobd(["--kubeconfig", str(cluster / "kubeconfig"), "--tfevent-collector-image", "registry.example/knob:1"])
    client = KnobClient(home=home)
    name = f"collect-{kind}"
    trials = run(client, name, kind)
    assert [t["state"] for t in trials] == ["Succeeded", "Succeeded"], [t["message"] for t in trials]
    for trial in trials:
        lr = float(next(a["value"] for a in trial["assignments"] if a["name"] == "lr"))
        reports = client.get_trial_metrics(name, trial["name"])
        got = {metric: [r["value"] for r in reports if r["name"] == metric] for metric in ("accuracy", "loss")}
        wanted = {metric: [values(lr, epoch)[metric] for epoch in range(1, EPOCHS + 1)] for metric in ("accuracy", "loss")}
        tolerance = 1e-6 if kind == "tfevent" else 0  # event files hold float32
        for metric in wanted:
            assert len(got[metric]) == EPOCHS, (metric, reports)
            assert got[metric] == pytest.approx(wanted[metric], abs=tolerance), metric
        if kind in ("json", "tfevent"):
            assert [r["step"] for r in reports if r["name"] == "loss"] == list(range(1, EPOCHS + 1))

    jobs = created(cluster, "Job")
    assert len(jobs) == 2 and all(record["valid"] for record in jobs), [r["message"] for r in jobs]
    pod = jobs[0]["object"]["spec"]["template"]["spec"]
    [sidecar] = pod["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert pod["volumes"] == [{"name": "knob-metrics", "emptyDir": {}}]
    folder = {"text": "/var/log/katib", "json": "/var/log/katib", "tfevent": "/var/log/katib/tfevent", "custom": "/out"}[kind]
    assert sidecar["volumeMounts"] == [{"name": "knob-metrics", "mountPath": folder}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "knob-metrics", "mountPath": folder}]
    if kind == "tfevent":
        assert sidecar["image"] == "registry.example/knob:1" and sidecar["command"][:3] == ["knob", "collect", "tfevents"]
    if kind == "custom":
        assert sidecar["name"] == "my-collector" and sidecar["image"] == "example.com/my-collector:1"
    # The Jobs completed although their sidecars ran beside the trainer (retain: true keeps them to look at).
    config.load_kube_config(config_file=str(cluster / "kubeconfig"))
    for record in jobs:
        job = k8s.BatchV1Api().read_namespaced_job(record["object"]["metadata"]["name"], "default")
        assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions), job.status


def test_a_file_never_written_leaves_the_trial_without_metrics_naming_the_path(cluster, make_knobd):
    home = make_knobd(["--kubeconfig", str(cluster / "kubeconfig")])
    client = KnobClient(home=home)
    trials = run(client, "collect-never", "never", trials=1)
    [trial] = trials
    assert trial["state"] == "MetricsUnavailable", trial
    assert "/var/log/katib/metrics.log" in trial["message"], trial["message"]
    assert "was never created" in trial["message"], trial["message"]


def test_a_failed_trial_says_what_its_container_said_although_its_log_is_the_collectors(cluster, make_knobd):
    home = make_knobd(["--kubeconfig", str(cluster / "kubeconfig")])
    client = KnobClient(home=home)
    [trial] = run(client, "collect-crash", "crash", trials=1)
    assert trial["state"] == "Failed", trial
    assert "training-container: the training data is not where it should be" in trial["message"], trial["message"]


def test_a_collector_image_that_cannot_be_pulled_fails_the_trial_with_that_reason(tmp_path, make_knobd, start_kube_cluster):
    cluster = start_kube_cluster(tmp_path / "cluster", "--faults", json.dumps([{"imagePull": "busybox"}]))
    home = make_knobd(["--kubeconfig", str(cluster / "kubeconfig"), "--pod-pending-timeout", "2"])
    client = KnobClient(home=home)
    [trial] = run(client, "collect-nopull", "never", trials=1)
    assert trial["state"] == "Failed", trial
    assert trial["reason"] == "ImagePullBackOff", trial
    assert "busybox" in trial["message"], trial["message"]
