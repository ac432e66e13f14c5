"""report_metrics() in trials of Push experiments: the reports reach knobd with the trial's token, over the Unix
socket or TCP, and what must be refused is."""
import json
import os
import sys
import time

import pytest

from knob_client import KnobClient, KnobError, report_metrics
from knob_client.katib import report_metrics as katib_report_metrics

CLIENT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# Pushes three reports with report_metrics, then (in every trial after the first) tries what must be refused, and
# writes what happened to $KNOB_TRIAL_DIR/outcome.json. With a "wait" argument it first waits for a file named go
# in its folder, so that a test can push to it from outside while it runs.
TRAINER = f"""
import json, os, sys, time
sys.path.insert(0, {CLIENT!r})
from knob_client.katib import report_metrics
from knob_client import KnobError

folder = os.environ["KNOB_TRIAL_DIR"]
if "wait" in sys.argv:
    while not os.path.exists(os.path.join(folder, "go")):
        time.sleep(0.05)
lr = float(sys.argv[1])
pushed = []
for step in range(1, 4):
    report = {{"accuracy": round(lr * step, 6), "loss": str(1.0 / step), "step": step}}
    report_metrics(report, db_manager_address="katib-db-manager.kubeflow:6789", timeout=30)
    pushed.append(report)
outcome = {{"pushed": pushed}}

def refused(**changes):
    saved = dict(os.environ)
    os.environ.update(changes)
    try:
        report_metrics({{"accuracy": 9.0}})
        return None
    except KnobError as error:
        return [error.status, error.code, error.message]
    finally:
        os.environ.clear()
        os.environ.update(saved)

try:
    report_metrics({{"accuracy": "high"}})
except ValueError as error:
    outcome["not_a_number"] = str(error)
outcome["wrong_token"] = refused(KNOB_PUSH_TOKEN="0" * 64)
number = int(os.environ["KNOB_TRIAL"].rsplit("-", 1)[1])
if number > 1:
    earlier = os.environ["KNOB_EXPERIMENT"] + f"-{{number - 1}}"
    with open(os.path.join(folder, "..", earlier, "push-token")) as f:
        earlier_token = f.read()
    outcome["ended"] = refused(KNOB_TRIAL=earlier, KNOB_PUSH_TOKEN=earlier_token)
    outcome["foreign"] = refused(KNOB_TRIAL=earlier)
with open(os.path.join(folder, "outcome.json"), "w") as f:
    json.dump(outcome, f)
"""


def push_experiment(name, tmp_path, trials, wait=False):
    trainer = tmp_path / "trainer.py"
    trainer.write_text(TRAINER)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy", "additionalMetricNames": ["loss"]},
            "algorithm": {"algorithmName": "grid"},
            "parallelTrialCount": 1,
            "maxTrialCount": trials,
            "metricsCollectorSpec": {"collector": {"kind": "Push"}},
            "parameters": [{"name": "lr", "parameterType": "discrete", "feasibleSpace": {"list": ["0.1", "0.2", "0.3"]}}],
            "trialTemplate": {"command": [sys.executable, str(trainer), "${trialParameters.lr}"] + (["wait"] if wait else [])},
        },
    }


def outcome_of(home, experiment, trial):
    with open(os.path.join(home, "trials", experiment, trial, "outcome.json")) as f:
        return json.load(f)


def wait_for(condition, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.05)


def test_report_metrics_pushes_each_report_to_knobd_and_what_must_be_refused_is(knobd, tmp_path):
    client = KnobClient(home=knobd)
    client.create_experiment(push_experiment("pushpy", tmp_path, trials=2))
    client.wait_for_experiment_condition("pushpy", timeout=300, polling_interval=0.2)
    trials = client.list_trials("pushpy")
    assert [trial["state"] for trial in trials] == ["Succeeded", "Succeeded"], trials
    for trial in trials:
        outcome = outcome_of(knobd, "pushpy", trial["name"])
        metrics = client.get_trial_metrics("pushpy", trial["name"])
        accuracy = [m for m in metrics if m["name"] == "accuracy"]
        loss = [m for m in metrics if m["name"] == "loss"]
        assert [m["value"] for m in accuracy] == [report["accuracy"] for report in outcome["pushed"]]
        assert [m["value"] for m in loss] == [float(report["loss"]) for report in outcome["pushed"]]
        assert [m["step"] for m in accuracy] == [1, 2, 3]
        assert len(metrics) == 6, metrics
        assert "accuracy" in outcome["not_a_number"] and "'high'" in outcome["not_a_number"]
        status, code, message = outcome["wrong_token"]
        assert status == 403 and trial["name"] in message, outcome["wrong_token"]
    first, second = (trial["name"] for trial in trials)
    status, code, message = outcome_of(knobd, "pushpy", second)["ended"]
    assert status == 409 and code == "TrialEnded" and first in message and "Succeeded" in message
    assert outcome_of(knobd, "pushpy", second)["foreign"][0] == 403


def test_over_tcp_the_trials_token_is_enough_and_the_daemons_is_not(knobd_tcp, tmp_path, monkeypatch):
    home, url, daemon_token = knobd_tcp
    client = KnobClient(home=home)
    client.create_experiment(push_experiment("pushtcp", tmp_path, trials=1, wait=True))
    trial = "pushtcp-1"
    token_file = os.path.join(home, "trials", "pushtcp", trial, "push-token")
    wait_for(lambda: os.path.exists(token_file), "the trial's token")
    with open(token_file) as f:
        token = f.read()
    assert len(token) == 64 and os.stat(token_file).st_mode & 0o777 == 0o600
    monkeypatch.setenv("KNOB_PUSH_URL", url)
    monkeypatch.setenv("KNOB_EXPERIMENT", "pushtcp")
    monkeypatch.setenv("KNOB_TRIAL", trial)
    monkeypatch.setenv("KNOB_PUSH_TOKEN", token)
    wait_for(lambda: client.get_trial("pushtcp", trial)["state"] == "Running", "the trial to run")
    report_metrics({"accuracy": 0.25, "step": 7})
    # The daemon's token opens the rest of the API, not a trial's reports.
    monkeypatch.setenv("KNOB_PUSH_TOKEN", daemon_token)
    with pytest.raises(KnobError) as refused:
        katib_report_metrics({"accuracy": 0.5})
    assert refused.value.status == 403
    # The trial's token opens nothing else.
    with pytest.raises(KnobError) as other:
        KnobClient(server=url, token=token).list_experiments()
    assert other.value.status == 401
    open(os.path.join(home, "trials", "pushtcp", trial, "go"), "w").close()
    client.wait_for_experiment_condition("pushtcp", timeout=300, polling_interval=0.2)
    metrics = client.get_trial_metrics("pushtcp", trial)
    accuracy = [(m["step"], m["value"]) for m in metrics if m["name"] == "accuracy"]
    # The report pushed over TCP first, then the trial's own; not the one sent with the daemon's token.
    assert accuracy == [(7, 0.25), (1, 0.1), (2, 0.2), (3, 0.3)], accuracy


def test_report_metrics_outside_a_trial_says_so(monkeypatch):
    for variable in ("KNOB_PUSH_URL", "KNOB_PUSH_TOKEN", "KNOB_TRIAL", "KNOB_EXPERIMENT"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(RuntimeError, match="no knob trial"):
        report_metrics({"accuracy": 0.9})


def test_tune_with_a_push_collector_runs_the_objective_that_calls_report_metrics(knobd):
    from knob_client import katib

    def objective(parameters):
        import sys
        sys.path.insert(0, parameters["client"])
        from knob_client.katib import report_metrics
        report_metrics({"accuracy": float(parameters["lr"]) * 2})

    katib_client = katib.KatibClient(home=knobd)
    with pytest.warns(UserWarning):
        katib_client.tune(name="pushtune", objective=objective,
                          parameters={"lr": katib.search.double(min=0.1, max=0.2), "client": CLIENT},
                          objective_metric_name="accuracy", max_trial_count=2, parallel_trial_count=1,
                          metrics_collector_config={"kind": "Push"})
    client = KnobClient(home=knobd)
    client.wait_for_experiment_condition("pushtune", timeout=300, polling_interval=0.2)
    spec = client._request("GET", "/v1/experiments/pushtune/spec", raw=True)
    assert "Push" in spec
    for trial in client.list_trials("pushtune"):
        lr = float(next(a["value"] for a in trial["assignments"] if a["name"] == "lr"))
        values = [m["value"] for m in client.get_trial_metrics("pushtune", trial["name"]) if m["name"] == "accuracy"]
        assert values == [pytest.approx(lr * 2, rel=1e-12)], (trial, values)


def test_report_metrics_waits_for_a_knob_that_is_restarting(tmp_path, monkeypatch):
    import http.server
    import socketserver
    import threading

    socket_path = str(tmp_path / "knobd.sock")
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.headers["Authorization"],
                             json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"trial": "e-1", "accepted": ["accuracy"], "ignored": []}')

        def address_string(self):
            return "unix"

        def log_message(self, *arguments):
            pass

    class Server(socketserver.UnixStreamServer):
        pass

    started = threading.Event()

    def serve_later():
        # Nothing listens until the client has been refused at least once.
        while not started.is_set():
            time.sleep(0.01)
        time.sleep(0.3)
        with Server(socket_path, Handler) as server:
            server.handle_request()

    thread = threading.Thread(target=serve_later)
    thread.start()
    monkeypatch.setenv("KNOB_PUSH_URL", f"unix://{socket_path}")
    monkeypatch.setenv("KNOB_PUSH_TOKEN", "t" * 64)
    monkeypatch.setenv("KNOB_EXPERIMENT", "e")
    monkeypatch.setenv("KNOB_TRIAL", "e-1")
    started.set()
    report_metrics({"accuracy": 0.5, "step": 2}, timeout=60)
    thread.join()
    assert received == [("/v1/experiments/e/trials/e-1/metrics", "Bearer " + "t" * 64, {"accuracy": 0.5, "step": 2})]
