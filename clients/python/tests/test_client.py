import os
import textwrap

import pytest

from knob_client import KnobClient, KnobError, report_metrics, search


def objective(parameters):
    # Self-contained, as Katib requires: the best score is at x = 0.3, with the "adam" optimizer.
    x = parameters["x"]
    penalty = 0.0 if parameters["optimizer"] == "adam" else 0.5
    for epoch in range(1, parameters["epochs"] + 1):
        print(f"Epoch {epoch}. score={-(x - 0.3) ** 2 - penalty:.6f} - loss={(x - 0.3) ** 2 / epoch:.6f}")
    assert parameters["fixed"] == "kept", "fixed values pass through unchanged"


def test_tune_then_the_optimal_trial_matches_the_objective(knobd):
    client = KnobClient(home=knobd)
    created = client.tune(
        name="tune-x",
        objective=objective,
        parameters={"x": search.double(min=0, max=1), "optimizer": search.categorical(["sgd", "adam"]),
                    "epochs": search.int(min=1, max=2), "fixed": "kept"},
        algorithm_name="random",
        algorithm_settings={"random_state": 3},
        objective_metric_name="score",
        additional_metric_names=["loss"],
        max_trial_count=10,
        parallel_trial_count=3,
        max_failed_trial_count=2,
        env_per_trial={"TUNE_TEST": "1"},
    )
    assert created["name"] == "tune-x" and created["status"] == "Running"
    assert client.is_experiment_running("tune-x")

    best = None
    while best is None:  # the pipeline's polling loop: it ends once a trial has the objective
        best = client.get_optimal_hyperparameters("tune-x")
    experiment = client.wait_for_experiment_condition("tune-x", timeout=120, polling_interval=0.2)
    assert experiment["status"] == "Succeeded" and client.is_experiment_succeeded("tune-x")
    assert not client.is_experiment_failed("tune-x")

    best = client.get_optimal_hyperparameters("tune-x")["currentOptimalTrial"]
    trials = client.list_trials("tune-x")
    assert len(trials) == 10 and all(t["state"] == "Succeeded" for t in trials)

    def score(trial):
        values = {a["name"]: a["value"] for a in trial["assignments"]}
        return -(float(values["x"]) - 0.3) ** 2 - (0.0 if values["optimizer"] == "adam" else 0.5)

    top = max(trials, key=score)
    assert best["bestTrialName"] == top["name"]
    reported = {m["name"]: float(m["max"]) for m in best["observation"]["metrics"]}
    assert reported["score"] == pytest.approx(score(top), abs=1e-6)
    assert {a["name"] for a in best["parameterAssignments"]} == {"x", "optimizer", "epochs"}

    trial = client.get_trial("tune-x", top["name"])
    assert trial["name"] == top["name"]
    metrics = client.get_trial_metrics("tune-x", top["name"])
    assert {m["name"] for m in metrics} == {"score", "loss"}
    logs = client.get_trial_logs("tune-x", top["name"])
    assert "score=" in logs and client.get_trial_logs("tune-x", top["name"], follow=True) == logs
    assert [e["name"] for e in client.list_experiments()] == ["tune-x"]
    assert os.path.exists(os.path.join(knobd, "functions", "tune-x", "objective.py"))


def test_budget_edits_stop_resume_and_delete(knobd, tmp_path):
    client = KnobClient(home=knobd)
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: slow}
        spec:
          objective: {type: minimize, objectiveMetricName: loss}
          algorithm: {algorithmName: random}
          parallelTrialCount: 1
          maxTrialCount: 3
          parameters:
            - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
          trialTemplate:
            command: [python3, slow.py, "${trialParameters.x}"]
        """))
    client.create_experiment(str(spec))
    edited = client.edit_experiment_budget("slow", max_trial_count=5, parallel_trial_count=2, max_failed_trial_count=1)
    assert edited["budget"] == {"maxTrialCount": 5, "parallelTrialCount": 2, "maxFailedTrialCount": 1}
    assert client.get_optimal_hyperparameters("slow") is None
    stopped = client.stop_experiment("slow")
    assert stopped["status"] == "Stopped"
    with pytest.raises(RuntimeError, match="ended Stopped"):
        client.wait_for_experiment_condition("slow", timeout=5, polling_interval=0.1)
    client.resume_experiment("slow")
    with pytest.raises(TimeoutError):
        client.wait_for_experiment_condition("slow", timeout=0.5, polling_interval=0.1)
    client.delete_experiment("slow")
    with pytest.raises(KnobError) as missing:
        client.get_experiment("slow")
    assert missing.value.status == 404 and "no experiment named slow" in missing.value.message


def test_a_bad_spec_raises_with_the_servers_message(knobd):
    client = KnobClient(home=knobd)
    with pytest.raises(KnobError) as bad:
        client.create_experiment({"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "Bad_Name"},
                                  "spec": {"objective": {"type": "maximise", "objectiveMetricName": "acc"}}})
    assert bad.value.status == 422 and bad.value.code == "InvalidSpec"
    assert "metadata.name" in bad.value.message and "spec.objective.type" in bad.value.message
    assert any(p["path"] == "spec.objective.type" for p in bad.value.problems)
    with pytest.raises(ValueError, match="objective_metric_name"):
        client.tune(name="t", objective=objective, parameters={"x": search.double(0, 1)})
    with pytest.warns(UserWarning, match="base_image"):
        with pytest.raises(KnobError):
            client.tune(name="Bad_Name", objective=objective, parameters={"x": search.double(0, 1)},
                        objective_metric_name="score", base_image="python:3.11")


def quadratic(parameters):
    print(f"score={-(parameters['x'] - 0.3) ** 2:.6f}")


def test_tune_over_tcp_carries_the_function_in_the_command(knobd_tcp):
    home, url, token = knobd_tcp
    with pytest.raises(KnobError) as denied:
        KnobClient(server=url).list_experiments()
    assert denied.value.status == 401
    client = KnobClient(server=url, token=token)
    client.tune(name="remote", objective=quadratic, parameters={"x": search.double(min=0, max=1, step=0.1)},
                algorithm_name="grid", objective_metric_name="score", parallel_trial_count=2)
    client.wait_for_experiment_condition("remote", timeout=120, polling_interval=0.2)
    best = client.get_optimal_hyperparameters("remote")["currentOptimalTrial"]
    assert best["parameterAssignments"] == [{"name": "x", "value": "0.3"}]
    assert client.get_experiment("remote")["reason"] == "SearchSpaceExhausted"


def test_an_absent_daemon_is_a_clear_error(tmp_path):
    with pytest.raises(KnobError, match="no knobd answers"):
        KnobClient(home=str(tmp_path)).list_experiments()


def test_report_metrics_prints_knobs_format(capsys, monkeypatch):
    monkeypatch.setenv("KNOB_TRIAL", "some-1")
    monkeypatch.delenv("KNOB_PUSH_URL", raising=False)
    report_metrics({"accuracy": 0.97, "loss": 0.1})
    assert capsys.readouterr().out == "accuracy=0.97 - loss=0.1\n"


def test_the_mnist_tune_example_runs_end_to_end(knobd):
    import subprocess
    import sys

    env = dict(os.environ, KNOB_HOME=knobd, TUNE_TRAIN_LIMIT="6000")
    example = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "mnist", "tune.py")
    result = subprocess.run([sys.executable, example], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("best trial tune-mnist-")
    assert float(lines[0].rsplit("=", 1)[1]) > 0.7
    assert {line.split("=")[0].strip() for line in lines[1:]} == {"lr", "momentum", "epochs"}
