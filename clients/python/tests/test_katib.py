import datetime
import glob
import json
import os
import subprocess
import sys
import time
import warnings

import pytest

# The repository and knobd as this folder's conftest.py finds them (imported by path: other test
# folders run in the same session have a conftest module of their own).
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def knobd_path():
    return os.environ.get("KNOBD") or os.path.join(REPO, ".build", "debug", "knobd")
from knob_client import KnobClient, katib
from knob_client import katib_models as models
from knob_client.spec_text import parse


def main(parameters):
    # Written for Katib: searched values arrive as text, fixed ones as they were given.
    assert isinstance(parameters["lr"], str) and isinstance(parameters["epochs"], str), parameters
    assert parameters["no_cuda"] is True and parameters["bucket_name"] == "models", parameters
    import json
    import os

    lr, momentum = float(parameters["lr"]), float(parameters["momentum"])
    for epoch in range(1, int(parameters["epochs"]) + 1):
        accuracy = 1 - (lr - 0.1) ** 2 - (momentum - 0.5) ** 2 / epoch
        print(f"Epoch {epoch}. accuracy={accuracy:.6f} - loss={1 - accuracy:.6f}")
    # The pipeline uploaded the model to a bucket; on knob it goes to the trial's artifacts directory.
    if os.environ.get("KNOB_ARTIFACTS_DIR"):
        with open(os.path.join(os.environ["KNOB_ARTIFACTS_DIR"], "model.json"), "w") as f:
            json.dump({"lr": lr, "momentum": momentum, "accuracy": accuracy}, f)


def tune(katib_client, exp_name, trials=4):
    katib_client.tune(name=exp_name, objective=main,
                      parameters={"lr": katib.search.double(min=0.01, max=0.2),
                                  "momentum": katib.search.double(min=0.1, max=0.9),
                                  "epochs": katib.search.int(min=1, max=3),
                                  "no_cuda": True, "bucket_name": "models"},
                      algorithm_name="cmaes", objective_metric_name="accuracy", additional_metric_names=["loss"],
                      max_trial_count=trials, parallel_trial_count=2, base_image="docker.io/python:3.11",
                      packages_to_install=["numpy"], resources_per_trial={"cpu": "1", "memory": "1Gi"})


def accuracy_of(trial):
    return next(float(m.max) for m in trial.status.observation.metrics if m.name == "accuracy")


def test_the_katib_pipeline_runs_with_only_the_import_changed(knobd, capsys, tmp_path):
    katib_client = katib.KatibClient(home=knobd)
    exp_name = "pipeline"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune(katib_client, exp_name)
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "local processes" in said[0], said
    assert said[0].endswith("base_image, resources_per_trial, packages_to_install")

    status = katib_client.get_experiment_status(exp_name)
    assert status in ("Created", "Running", "Succeeded")
    best = None
    while best is None:  # the pipeline polls until a trial has reported the objective
        best = katib_client.get_optimal_hyperparameters(exp_name)
        time.sleep(0.1)
    katib_client.wait_for_experiment_condition(exp_name, timeout=300, polling_interval=0.2)
    assert "Experiment Trials status: 4 Trials" in capsys.readouterr().out

    assert katib_client.get_experiment_status(exp_name) == "Succeeded"
    best = katib_client.get_optimal_hyperparameters(exp_name)
    assignments = {hp["name"]: hp["value"] for hp in best["currentOptimalTrial"]["parameterAssignments"]}
    assert set(assignments) == {"lr", "momentum", "epochs"}
    assert best["currentOptimalTrial"]["bestTrialName"] == best.best_trial_name

    trials = katib_client.list_trials(exp_name)
    assert len(trials) == 4
    top = max(trials, key=accuracy_of)
    assert best.best_trial_name == top.metadata.name
    assert {p.name: p.value for p in best.parameter_assignments} == {p.name: p.value for p in top.spec.parameter_assignments}
    assert {p.name: p.value for p in top.spec.parameter_assignments} == assignments

    conditions = katib_client.get_experiment(exp_name).status.conditions
    assert [(c.type, c.status) for c in conditions] == [("Created", "True"), ("Running", "False"), ("Succeeded", "True")]
    assert conditions[-1].reason == "ExperimentMaxTrialsReached"
    assert isinstance(conditions[-1].last_transition_time, datetime.datetime)

    # The next step of the pipeline takes the best trial's model.
    paths = KnobClient(home=knobd).download_artifacts(exp_name, directory=tmp_path / "best")
    assert paths == [str(tmp_path / "best" / "model.json")]
    with open(paths[0]) as f:
        model = json.load(f)
    assert model["lr"] == pytest.approx(float(assignments["lr"]))
    assert model["accuracy"] == pytest.approx(accuracy_of(top), abs=1e-6)


def test_each_method_returns_katibs_shape(knobd):
    katib_client = katib.KatibClient(home=knobd)
    with pytest.warns(UserWarning):
        tune(katib_client, "shapes", trials=3)
    experiment = katib_client.wait_for_experiment_condition("shapes", timeout=300, polling_interval=0.2)

    assert isinstance(experiment, katib.V1beta1Experiment)
    assert experiment.api_version == "kubeflow.org/v1beta1" and experiment.kind == "Experiment"
    assert experiment.metadata.name == "shapes"
    assert experiment.spec.algorithm.algorithm_name == "cmaes"
    assert experiment.spec.objective.objective_metric_name == "accuracy"
    assert experiment.spec.objective.additional_metric_names == ["loss"]
    assert [(p.name, p.parameter_type) for p in experiment.spec.parameters] == [
        ("lr", "double"), ("momentum", "double"), ("epochs", "int")]
    assert experiment.spec.parameters[0].feasible_space.min == "0.01"
    assert (experiment.spec.max_trial_count, experiment.spec.parallel_trial_count) == (3, 2)
    assert experiment.status.trials == 3 and experiment.status.trials_succeeded == 3
    assert experiment.status.trials_failed == 0 and experiment.status.trials_running == 0
    assert experiment.status.start_time <= experiment.status.completion_time
    as_dict = experiment.to_dict()
    assert as_dict["spec"]["objective"]["objective_metric_name"] == "accuracy"
    assert as_dict["status"]["current_optimal_trial"]["best_trial_name"] == experiment.status.current_optimal_trial.best_trial_name
    assert experiment["status"]["conditions"][-1]["type"] == "Succeeded"  # as the older SDK's dict

    assert katib_client.is_experiment_created("shapes") and katib_client.is_experiment_succeeded("shapes")
    assert not katib_client.is_experiment_running("shapes") and not katib_client.is_experiment_failed("shapes")
    assert not katib_client.is_experiment_restarting("shapes")
    conditions = katib_client.get_experiment_conditions("shapes")
    assert all(isinstance(c, katib.V1beta1ExperimentCondition) for c in conditions)
    assert katib_client.get_experiment_conditions("ignored", experiment=experiment) == conditions
    assert [e.metadata.name for e in katib_client.list_experiments()] == ["shapes"]

    trials = katib_client.list_trials("shapes")
    assert all(isinstance(t, katib.V1beta1Trial) for t in trials)
    assert sorted(t.metadata.name for t in trials) == ["shapes-1", "shapes-2", "shapes-3"]
    trial = trials[0]
    assert trial.kind == "Trial" and trial.metadata.labels == {"katib.kubeflow.org/experiment": "shapes"}
    assert [(c.type, c.status, c.reason) for c in trial.status.conditions] == [
        ("Created", "True", "TrialCreated"), ("Running", "False", "TrialRunning"), ("Succeeded", "True", "TrialSucceeded")]
    assert trial.spec.objective.objective_metric_name == "accuracy"
    assert {m.name for m in trial.status.observation.metrics} == {"accuracy", "loss"}
    assert katib_client.list_trials() == trials
    assert katib_client.get_trial(trial.metadata.name) == trial

    details = katib_client.get_success_trial_details("shapes")
    assert [d["name"] for d in details] == [t.metadata.name for t in trials]
    assert details[0]["parameter_assignments"] == trial.spec.parameter_assignments
    assert details[0]["metrics"] == trial.status.observation.metrics

    epochs = int(next(p.value for p in trial.spec.parameter_assignments if p.name == "epochs"))
    logs = katib_client.get_trial_metrics(trial.metadata.name)
    assert [log.metric.name for log in logs] == ["accuracy", "loss"] * epochs
    assert logs[-2].metric.value == next(m.latest for m in trial.status.observation.metrics if m.name == "accuracy")
    assert logs[0].time_stamp.endswith("Z")

    lines = list(katib_client.get_job_logs("shapes", trial.metadata.name))
    assert [line.split(".")[0] for line in lines] == [f"Epoch {n}" for n in range(1, epochs + 1)]
    assert list(katib_client.get_job_logs("shapes", trial.metadata.name, follow=True)) == lines

    katib_client.delete_experiment("shapes")
    assert katib_client.list_experiments() == []


def test_the_experiment_agrees_with_knob_get(knobd, tmp_path):
    """The Katib object this client builds is the one `knob get NAME -o json` prints, for a YAML spec with
    a budget edit as well as for tune()'s JSON."""
    knob = os.path.join(os.path.dirname(knobd_path()), "knob")
    if not os.access(knob, os.X_OK):
        pytest.fail(f"knob is not built at {knob}: run `swift build` first")
    katib_client = katib.KatibClient(home=knobd)
    (tmp_path / "spec.yaml").write_text(
        "# a Katib experiment\n"
        "apiVersion: kubeflow.org/v1beta1\n"
        "kind: Experiment\n"
        "metadata:\n  name: yaml-spec\n  namespace: team-a\n"
        "spec:\n"
        "  objective: {type: minimize, objectiveMetricName: loss, goal: 0.001}\n"
        "  algorithm:\n    algorithmName: random\n    algorithmSettings:\n      - name: random_state\n        value: \"7\"\n"
        "  maxTrialCount: 2\n"
        "  parameters:\n"
        "    - name: x\n      parameterType: double\n      feasibleSpace: {min: \"0\", max: \"1\"}\n"
        "  trialTemplate:\n"
        "    command:\n      - /bin/sh\n      - -c\n      - |-\n        echo \"loss=$0\"\n      - ${trialParameters.x}\n"
        "    trialParameters:\n      - name: x\n        reference: x\n")
    katib_client.knob.create_experiment(str(tmp_path / "spec.yaml"))
    katib_client.wait_for_experiment_condition("yaml-spec", timeout=120, polling_interval=0.2)
    katib_client.edit_experiment_budget("yaml-spec", max_trial_count=3, parallel_trial_count=2)
    katib_client.wait_for_experiment_condition("yaml-spec", timeout=120, polling_interval=0.2)
    with pytest.warns(UserWarning):
        tune(katib_client, "json-spec", trials=2)
    katib_client.wait_for_experiment_condition("json-spec", timeout=300, polling_interval=0.2)

    for name in ("yaml-spec", "json-spec"):
        printed = subprocess.run([knob, "get", name, "--home", knobd, "-o", "json"], capture_output=True, text=True,
                                 check=True).stdout
        expected = json.loads(printed)
        del expected["knob"]
        assert katib_client.get_experiment(name).to_json() == expected
    edited = katib_client.get_experiment("yaml-spec")
    assert edited.metadata.namespace == "team-a"
    assert (edited.spec.max_trial_count, edited.spec.parallel_trial_count) == (3, 2)
    assert edited.status.trials == 3  # raising the budget of a succeeded experiment ran it again, as in Katib
    assert edited.spec.trial_template.to_json()["command"][2] == 'echo "loss=$0"'


def test_budget_edits_waits_and_deletes_raise_as_katibs_do(knobd, tmp_path):
    katib_client = katib.KatibClient(home=knobd)
    experiment = katib.V1beta1Experiment(
        api_version="kubeflow.org/v1beta1", kind="Experiment", metadata=katib.V1ObjectMeta(name="slow"),
        spec=models.V1beta1ExperimentSpec(
            objective=models.V1beta1ObjectiveSpec(type="minimize", objective_metric_name="loss"),
            algorithm=models.V1beta1AlgorithmSpec(algorithm_name="random"),
            parallel_trial_count=1, max_trial_count=3,
            parameters=[models.V1beta1ParameterSpec(name="x", parameter_type="double",
                                                    feasible_space=models.V1beta1FeasibleSpace(min="0", max="1"))],
            trial_template=models.V1beta1TrialTemplate(
                trial_parameters=[models.V1beta1TrialParameterSpec(name="x", reference="x")],
                trial_spec=None)))
    body = experiment.to_json()
    body["spec"]["trialTemplate"]["command"] = ["sleep", "30", "${trialParameters.x}"]  # knob's local trial template
    assert katib_client.create_experiment(body) is None
    with pytest.raises(Exception, match="A Katib Experiment with the name default/slow already exists"):
        katib_client.create_experiment(body)
    with pytest.raises(ValueError, match="must have a name"):
        katib_client.create_experiment({"metadata": {}})

    assert katib_client.is_experiment_running("slow")
    assert katib_client.get_experiment_status("slow") == "Running"
    assert katib_client.get_optimal_hyperparameters("slow") is None
    with pytest.raises(ValueError, match="max_trial_count"):
        katib_client.edit_experiment_budget("slow")
    assert katib_client.edit_experiment_budget("slow", max_trial_count=5, parallel_trial_count=2) is None
    spec = katib_client.get_experiment("slow").spec
    assert (spec.max_trial_count, spec.parallel_trial_count) == (5, 2)
    with pytest.raises(RuntimeError, match="Failed to edit Katib Experiment: default/slow"):
        katib_client.edit_experiment_budget("slow", parallel_trial_count=9)  # more than maxTrialCount

    with pytest.raises(TimeoutError, match="Timeout waiting for Experiment: default/slow to reach Succeeded"):
        katib_client.wait_for_experiment_condition("slow", timeout=0.3, polling_interval=0.1)
    assert katib_client.wait_for_experiment_condition("slow", expected_condition="Running", polling_interval=0.1) \
        .metadata.name == "slow"
    katib_client.knob.stop_experiment("slow")
    with pytest.raises(RuntimeError, match="is Stopped"):
        katib_client.wait_for_experiment_condition("slow", timeout=5, polling_interval=0.1)
    assert not katib_client.is_experiment_running("slow")

    assert katib_client.delete_experiment("slow") is None
    with pytest.raises(RuntimeError, match="Failed to get Katib Experiment: default/slow"):
        katib_client.get_experiment("slow")
    with pytest.raises(RuntimeError, match="Failed to delete Katib Experiment"):
        katib_client.delete_experiment("slow")
    with pytest.raises(RuntimeError, match="Unable to get metrics for Trial default/slow-1"):
        katib_client.get_trial_metrics("slow-1")
    with pytest.raises(RuntimeError, match="not found"):
        list(katib_client.get_job_logs("slow", "slow-1"))
    with pytest.raises(ValueError, match="Trial name is required"):
        list(katib_client.get_job_logs("slow", ""))


def failing(parameters):
    raise SystemExit(f"lr {parameters['lr']} is out of range")


def test_a_failed_experiment_reads_as_failed(knobd):
    katib_client = katib.KatibClient(home=knobd, namespace="team-b")
    with pytest.warns(UserWarning, match="local processes"):
        katib_client.tune(name="fails", objective=failing, parameters={"lr": katib.search.double(min=0.1, max=0.2)},
                          objective_metric_name="accuracy", max_trial_count=3, parallel_trial_count=1,
                          max_failed_trial_count=0)
    with pytest.raises(RuntimeError, match="Experiment: team-b/fails is Failed"):
        katib_client.wait_for_experiment_condition("fails", timeout=120, polling_interval=0.2)
    experiment = katib_client.wait_for_experiment_condition("fails", expected_condition="Failed", polling_interval=0.2)
    assert experiment.metadata.namespace == "team-b"
    assert katib_client.is_experiment_failed("fails") and katib_client.get_experiment_status("fails") == "Failed"
    assert experiment.status.conditions[-1].reason.startswith("Experiment")
    trial = katib_client.list_trials("fails")[0]
    assert trial.status.conditions[-1].type == "Failed"
    assert katib_client.get_success_trial_details("fails") == []
    assert any("out of range" in line for line in katib_client.get_job_logs("fails", trial.metadata.name))


def test_tune_refuses_what_knob_does_not_run(knobd):
    katib_client = katib.KatibClient(home=knobd)
    with pytest.raises(ValueError, match="LLM"):
        katib_client.tune(name="llm", model_provider_parameters=object(), dataset_provider_parameters=object(),
                          trainer_parameters=object())
    with pytest.raises(ValueError, match="objective and parameters"):
        katib_client.tune(name="none")
    with pytest.raises(ValueError, match="kind 'File'"):
        katib_client.tune(name="file", objective=main, parameters={"lr": katib.search.double(0, 1)},
                          objective_metric_name="accuracy", metrics_collector_config={"kind": "File"})
    with pytest.warns(UserWarning):
        with pytest.raises(RuntimeError, match="(?s)Failed to create Katib Experiment: default/Bad_Name: .*metadata.name"):
            katib_client.tune(name="Bad_Name", objective=main, parameters={"lr": katib.search.double(0, 1)},
                              objective_metric_name="accuracy")


# -- models and spec text, without a daemon ------------------------------------------------------------------------

def test_models_read_and_write_katibs_json():
    data = {"bestTrialName": "e-2", "parameterAssignments": [{"name": "lr", "value": "0.1"}],
            "observation": {"metrics": [{"name": "accuracy", "min": "0.5", "max": "0.9", "latest": "0.9"}]}}
    optimal = katib.V1beta1OptimalTrial.from_json(data)
    assert optimal.parameter_assignments[0].value == "0.1" and optimal.observation.metrics[0].max == "0.9"
    assert optimal.to_json() == data
    assert optimal["currentOptimalTrial"] == data and optimal.get("bestTrialName") == "e-2"
    assert optimal.to_dict() == {"best_trial_name": "e-2", "parameter_assignments": [{"name": "lr", "value": "0.1"}],
                                 "observation": {"metrics": [{"latest": "0.9", "max": "0.9", "min": "0.5",
                                                              "name": "accuracy"}]}}
    assert optimal == katib.V1beta1OptimalTrial.from_json(json.loads(json.dumps(data)))
    assert optimal != katib.V1beta1OptimalTrial(best_trial_name="e-3")
    condition = katib.V1beta1ExperimentCondition.from_json({"type": "Running", "status": "True",
                                                            "lastUpdateTime": "2026-01-02T03:04:05Z"})
    assert condition.last_update_time == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert condition.to_json()["lastUpdateTime"] == "2026-01-02T03:04:05Z"
    assert models.V1beta1ParameterAssignment("lr", "0.2").to_dict() == {"name": "lr", "value": "0.2"}
    with pytest.raises(TypeError, match="unexpected keyword argument 'nmae'"):
        models.V1beta1ParameterAssignment(nmae="lr")


def test_knob_reasons_read_as_katibs():
    assert katib.katib_reason("MaxTrialsReached") == "ExperimentMaxTrialsReached"
    assert katib.katib_reason("GoalReached") == "ExperimentGoalReached"
    assert katib.katib_reason("SearchSpaceExhausted") == "ExperimentSuggestionEndReached"
    assert katib.katib_reason("ExperimentStopped") == "ExperimentStopped"
    view = {"createdAt": "2026-01-01T00:00:00Z", "startedAt": "2026-01-01T00:00:01Z",
            "completedAt": "2026-01-01T00:00:09Z", "status": "Stopped", "reason": "Stopped", "message": "stopped"}
    assert [(c["type"], c["status"]) for c in katib.experiment_conditions(view)] == [("Created", "True"), ("Running", "False")]
    assert [c["type"] for c in katib.experiment_conditions(dict(view, startedAt=None))] == ["Created"]


def test_the_yaml_reader_reads_specs_as_a_yaml_library_does():
    yaml = pytest.importorskip("yaml")
    files = sorted(glob.glob(os.path.join(REPO, "examples", "**", "*.yaml"), recursive=True)
                   + glob.glob(os.path.join(REPO, "Tests", "**", "*.yaml"), recursive=True))
    assert len(files) >= 5
    for path in files:
        with open(path) as f:
            text = f.read()
        assert parse(text) == yaml.safe_load(text), path
    for text in ["a: |\n  x\n  y\n\nb: 1\n", "a: >-\n  x\n  y\n\n  z\nb: [1, 'q', {c: d}]\n", "a:\n- 1\n- - 2\n  - 3\n",
                 "a: 'it''s' # note\nb: \"x\\ty\"\n", "a: |+\n  x\n\n", "- a: 1\n  b:\n    - x\n",
                 "a: {x: [1, 2], y: \"z, w\"}\nb: []\nc: {}\nd:\ne: ~\n", "---\na: 1.5\nb: -3\nc: true\n...\n"]:
        assert parse(text) == yaml.safe_load(text), text


def test_the_yaml_reader_refuses_what_it_does_not_read():
    for text, problem in [("a: &x 1", "anchors"), ("a: b\n  c: d", "several lines"), ("a: 1\n---\nb: 2", "second document"),
                          ("a: [1, 2", "not closed"), ("", "empty"), ("a: 1\na: 2", "twice")]:
        with pytest.raises(ValueError, match=problem):
            parse(text)
    assert parse('{"a": [1, "2"]}') == {"a": [1, "2"]}
    assert parse("n: 1e-3\nq: '7'\nt: True\n") == {"n": 0.001, "q": "7", "t": "True"}  # typed as knob types them


def test_the_katib_sdk_mnist_example_runs_end_to_end(knobd, tmp_path):
    env = dict(os.environ, KNOB_HOME=knobd, TUNE_TRAIN_LIMIT="6000", TUNE_TRIALS="4", TUNE_POLL_SECONDS="0.2",
               TUNE_MODEL_DIR=str(tmp_path / "model"))
    example = os.path.join(REPO, "examples", "mnist", "tune_katib_sdk.py")
    result = subprocess.run([sys.executable, example], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("local processes") == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "experiment tune-mnist-katib: Succeeded"
    assert lines[1].startswith("best trial tune-mnist-katib-") and float(lines[1].rsplit("=", 1)[1]) > 0.7
    assert {line.split("=")[0].strip() for line in lines[2:-1]} == {"lr", "momentum", "epochs"}
    assert lines[-1].startswith(f"best model: {tmp_path / 'model' / 'model.npz'} (w1 (")
