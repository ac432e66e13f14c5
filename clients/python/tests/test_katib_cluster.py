"""Katib's tune() with a container image, against knobd on a cluster: the Kubernetes API test server
(Tests/kube-apiserver), which validates every object with the official schemas and runs each container's command.

The objective needs a package that only `packages_to_install` brings (served from a local package index), so a
trial that succeeds shows that the Job's container installed it first, as in Katib."""

import base64
import hashlib
import importlib.util
import json
import os
import warnings
import zipfile

import pytest

from knob_client import katib
from knob_client import katib_job

IMAGE = "docker.io/library/python:3.11-slim"
OFFSET = 7.0


def objective(parameters):
    import os

    import knob_probe

    x = float(parameters["x"])
    print(f"greeting={len(os.environ.get('GREETING', ''))}")
    print(f"loss={(x - parameters['center']) ** 2 + knob_probe.OFFSET}")


def write_index(directory):
    """A package index (PEP 503, as files) holding one wheel, knob-probe 1.0, whose module sets OFFSET."""
    files = {
        "knob_probe/__init__.py": f"OFFSET = {OFFSET}\n",
        "knob_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: knob-probe\nVersion: 1.0\n",
        "knob_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: knob-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def digest(text):
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},{digest(text)},{len(text.encode())}\n" for path, text in files.items())
    files["knob_probe-1.0.dist-info/RECORD"] = record + "knob_probe-1.0.dist-info/RECORD,,\n"
    project = os.path.join(directory, "knob-probe")
    os.makedirs(project)
    wheel = "knob_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(project, wheel), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    with open(os.path.join(project, "index.html"), "w") as f:
        f.write(f'<!DOCTYPE html><html><body><a href="{wheel}">{wheel}</a></body></html>\n')
    return "file://" + directory


@pytest.fixture
def cluster(tmp_path, start_kube_cluster):
    """The API test server, giving containers of Python images a Python environment of their own."""
    return start_kube_cluster(tmp_path / "cluster", "--python-images", "python")


@pytest.fixture
def knobd_on_cluster(cluster, make_knobd):
    """knobd running Kubernetes trials on the test server, with an artifacts claim; its home."""
    return make_knobd(["--kubeconfig", str(cluster / "kubeconfig"), "--artifacts-claim", "models"])


def created(cluster_dir, kind):
    with open(cluster_dir / "created.jsonl") as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if r["object"]["kind"] == kind]


def test_tune_with_an_image_runs_katibs_jobs_on_the_cluster(cluster, knobd_on_cluster, tmp_path):
    index = write_index(str(tmp_path / "index"))
    home = knobd_on_cluster
    katib_client = katib.KatibClient(home=home)
    parameters = {"x": katib.search.double(min=0.0, max=1.0), "center": 0.25}
    options = dict(base_image=IMAGE, packages_to_install=["knob-probe"], pip_index_urls=[index],
                   resources_per_trial={"cpu": "1", "memory": "1Gi"}, env_per_trial={"GREETING": "hi"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with a cluster, nothing of the call goes unused
        katib_client.tune(name="tune-job", objective=objective, parameters=parameters,
                          objective_metric_name="loss", objective_type="minimize",
                          additional_metric_names=["greeting"], algorithm_name="random",
                          max_trial_count=3, parallel_trial_count=2, max_failed_trial_count=1, **options)
    katib_client.wait_for_experiment_condition("tune-job", timeout=300, polling_interval=1)
    assert katib_client.is_experiment_succeeded("tune-job")

    trials = katib_client.list_trials("tune-job")
    assert len(trials) == 3
    expected = katib_job.job_trial_template(objective, parameters, **options)
    assert katib_client.get_experiment("tune-job").spec.trial_template.trial_spec["kind"] == "Job"
    jobs = {record["object"]["metadata"]["name"]: record for record in created(cluster, "Job")}
    for trial in trials:
        x = next(a.value for a in trial.spec.parameter_assignments if a.name == "x")
        metrics = {m.name: float(m.latest) for m in trial.status.observation.metrics}
        # Only the installed package knows OFFSET; GREETING came through the container's env.
        assert metrics["loss"] == pytest.approx((float(x) - 0.25) ** 2 + OFFSET, abs=1e-9)
        assert metrics["greeting"] == 2

        record = jobs[trial.metadata.name]
        assert record["valid"], record["message"]
        job = record["object"]
        want = json.loads(json.dumps(expected["trialSpec"]).replace("${trialParameters.x}", x))
        assert job["apiVersion"] == "batch/v1" and job["metadata"]["namespace"] == "default"
        template = job["spec"]["template"]
        assert template["metadata"]["annotations"] == want["spec"]["template"]["metadata"]["annotations"]
        assert template["spec"]["restartPolicy"] == "Never"
        [container] = template["spec"]["containers"]
        [wanted] = want["spec"]["template"]["spec"]["containers"]
        # Field by field as Katib builds it; knob adds only its trial's names to the env.
        for field in ("name", "image", "command", "args", "resources"):
            assert container[field] == wanted[field], field
        added = {e["name"] for e in container["env"]} - {e["name"] for e in wanted["env"]}
        assert wanted["env"] == [e for e in container["env"] if e["name"] not in added]
        # knob adds the trial's names, and its artifacts folder of the claim given to knobd.
        assert added == {"KNOB_EXPERIMENT", "KNOB_TRIAL", "KATIB_TRIAL_NAME", "KNOB_ARTIFACTS_DIR"}
        assert container["volumeMounts"] == [{"name": "knob-artifacts", "mountPath": "/knob/artifacts",
                                              "subPath": f"tune-job/{trial.metadata.name}/artifacts"}]
        assert template["spec"]["volumes"] == [{"name": "knob-artifacts", "persistentVolumeClaim": {"claimName": "models"}}]
    assert len(jobs) == 3
    # What the trials installed stayed in their containers.
    assert importlib.util.find_spec("knob_probe") is None


def report_x(parameters):
    print(f"loss={parameters['x']}")


def test_tune_without_a_cluster_says_it_runs_local_trials(knobd):
    katib_client = katib.KatibClient(home=knobd)
    with pytest.warns(UserWarning, match="knobd has no Kubernetes cluster, so these trials run as local processes"):
        katib_client.tune(name="tune-local", objective=report_x,
                          parameters={"x": katib.search.double(min=0.0, max=1.0)}, objective_metric_name="loss",
                          max_trial_count=1)
    spec = katib_client.get_experiment("tune-local").spec
    assert spec.trial_template.trial_spec is None
    status = katib_client.knob._request("GET", "/v1/cluster")
    assert status["configured"] is False and "KUBECONFIG" in status["problem"]
