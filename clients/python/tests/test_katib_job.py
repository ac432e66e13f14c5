"""The Job trial template of Katib's tune(), built without a cluster: field by field against the shape Katib's SDK
builds, and against Katib's SDK itself where it is installed (`pip install kubeflow-katib`)."""

import json

import pytest

from knob_client import katib_job, search


def objective(parameters):
    print(f"score={float(parameters['x']) * parameters['k']}")


PARAMETERS = {"x": search.double(min=0, max=1), "opt": search.categorical(["sgd", "adam"]), "k": 3, "no_cuda": True}


def test_the_job_template_has_katibs_fields():
    template = katib_job.job_trial_template(
        objective, PARAMETERS, base_image="docker.io/python:3.11",
        resources_per_trial={"CPU": "2", "gpu": "1", "memory": "4Gi"}, env_per_trial={"EPOCHS": 3},
        retain_trials=True, packages_to_install=["numpy", "pandas==2.0"],
        pip_index_urls=["https://pypi.org/simple", "https://mirror.example/simple"], trial_active_deadline_seconds=600)

    assert template["primaryContainerName"] == "training-container"
    assert template["retain"] is True
    assert template["trialParameters"] == [{"name": "x", "reference": "x"}, {"name": "opt", "reference": "opt"}]
    job = template["trialSpec"]
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert set(job) == {"apiVersion", "kind", "spec"}
    assert set(job["spec"]) == {"template", "activeDeadlineSeconds"} and job["spec"]["activeDeadlineSeconds"] == 600
    pod = job["spec"]["template"]
    assert pod["metadata"] == {"annotations": {"sidecar.istio.io/inject": "false"}}
    assert set(pod["spec"]) == {"containers", "restartPolicy"} and pod["spec"]["restartPolicy"] == "Never"
    [container] = pod["spec"]["containers"]
    assert set(container) == {"name", "image", "command", "args", "resources", "env"}
    assert container["name"] == "training-container"
    assert container["image"] == "docker.io/python:3.11"
    assert container["command"] == ["bash", "-c"]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
                                      "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}}
    assert container["env"] == [{"name": "EPOCHS", "value": "3"}]

    [script] = container["args"]
    lines = script.split("\n")
    assert lines[:6] == [
        "",
        'if ! [ -x "$(command -v pip)" ]; then',
        "    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip",
        "fi",
        "",
        "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --prefer-binary --quiet         "
        "--no-warn-script-location --index-url https://pypi.org/simple --extra-index-url https://mirror.example/simple "
        "numpy pandas==2.0"]
    assert lines[6:10] == ["", "program_path=$(mktemp -d)", "read -r -d '' SCRIPT << EOM", ""]
    assert lines[10:12] == ["def objective(parameters):", "    print(f\"score={float(parameters['x']) * parameters['k']}\")"]
    assert lines[12:] == [
        "",
        "objective({'x': '${trialParameters.x}', 'opt': '${trialParameters.opt}', 'k': 3, 'no_cuda': True})",
        "",
        "EOM",
        'printf "%s" "$SCRIPT" > "$program_path/ephemeral_script.py"',
        'python -u "$program_path/ephemeral_script.py"']


def test_the_program_the_job_runs_calls_the_objective_with_the_trials_values(tmp_path, capfd):
    script = katib_job.objective_script(objective, PARAMETERS)
    program = script.split("<< EOM\n\n", 1)[1].split("\nEOM\n", 1)[0]
    substituted = program.replace("${trialParameters.x}", "0.5").replace("${trialParameters.opt}", "adam")
    exec(compile(substituted, "ephemeral_script.py", "exec"), {})
    assert capfd.readouterr().out == "score=1.5\n"


def test_without_options_the_container_has_only_what_katib_always_sets():
    template = katib_job.job_trial_template(objective, PARAMETERS, base_image="img")
    [container] = template["trialSpec"]["spec"]["template"]["spec"]["containers"]
    assert set(container) == {"name", "image", "command", "args"}
    assert set(template["trialSpec"]["spec"]) == {"template"}
    assert template["retain"] is False
    assert container["args"][0].startswith("\nprogram_path=$(mktemp -d)\n")


def test_bad_objectives_and_env_are_refused():
    with pytest.raises(ValueError, match="must be callable"):
        katib_job.objective_script("main", PARAMETERS)
    with pytest.raises(ValueError, match="only 'parameters'"):
        katib_job.objective_script(lambda a, b: None, PARAMETERS)
    with pytest.raises(ValueError, match="Incorrect value for env_per_trial"):
        katib_job.job_trial_template(objective, PARAMETERS, base_image="img", env_per_trial=[{"value": "1"}])
    assert katib_job.container_env([{"name": "A", "value": "1"}, {"secretRef": {"name": "s"}}]) == \
        ([{"name": "A", "value": "1"}], [{"secretRef": {"name": "s"}}])


def test_the_job_template_is_the_one_katibs_sdk_builds():
    katib = pytest.importorskip("kubeflow.katib")
    kubernetes = pytest.importorskip("kubernetes.client")

    def built_by_katib(**arguments):
        client = katib.KatibClient.__new__(katib.KatibClient)  # no cluster: only tune()'s building is used
        client.namespace = "default"
        created = []
        client.create_experiment = lambda experiment, namespace=None: created.append(experiment)
        client.tune(name="t", objective=objective, objective_metric_name="score",
                    parameters={"x": katib.search.double(min=0, max=1), "k": 3, "no_cuda": True}, **arguments)
        return katib_job.kubernetes_json(created[0])["spec"]["trialTemplate"]

    cases = [
        {},
        {"base_image": "docker.io/python:3.11", "retain_trials": True, "trial_active_deadline_seconds": 60},
        {"resources_per_trial": {"CPU": "1", "gpu": "2", "memory": "2Gi"}, "env_per_trial": {"A": 1}},
        {"resources_per_trial": kubernetes.V1ResourceRequirements(requests={"cpu": "2"}, limits={"cpu": "4"})},
        {"env_per_trial": [kubernetes.V1EnvVar(name="A", value="1"),
                           kubernetes.V1EnvFromSource(config_map_ref=kubernetes.V1ConfigMapEnvSource(name="cm"))]},
        {"packages_to_install": ["numpy"], "pip_index_urls": ["https://pypi.org/simple", "https://mirror.example/simple"]},
    ]
    for arguments in cases:
        expected = built_by_katib(**arguments)
        ours = katib_job.job_trial_template(objective, {"x": search.double(min=0, max=1), "k": 3, "no_cuda": True},
                                            **dict({"base_image": katib.BASE_IMAGE_PYTORCH}, **arguments))
        assert json.dumps(ours, sort_keys=True) == json.dumps(expected, sort_keys=True), arguments
