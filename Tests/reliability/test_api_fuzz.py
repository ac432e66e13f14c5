"""Schemathesis against a live knobd and the OpenAPI document: no server error, no answer outside the
document, and knobd alive and stopping cleanly at the end.

About 2,000 requests by default; KNOB_SCHEMATHESIS_REQUESTS=20000 for a longer run. The counts are
printed at the end of the pytest run.
"""
import json
import os
import subprocess
import sys
import time

from knobd_process import OPENAPI, report

REQUESTS = int(os.environ.get("KNOB_SCHEMATHESIS_REQUESTS", "2000"))
SEED = int(os.environ.get("KNOB_SCHEMATHESIS_SEED", "13"))
# The checks that hold knobd to its document. Left out: positive_data_acceptance and
# negative_data_rejection, which assume that every schema-valid request succeeds (a name that matches
# the pattern still names no experiment, a YAML string is rarely a valid spec).
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
          "response_schema_conformance", "unsupported_method", "allow_header_conformance"]
# Requests one example per operation costs on average, across the phases (measured on this document).
REQUESTS_PER_EXAMPLE = 23
EXAMPLE_SPEC = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: mnist}
spec:
  objective: {type: maximize, objectiveMetricName: accuracy}
  algorithm: {algorithmName: random}
  maxTrialCount: 2
  parallelTrialCount: 1
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.1"}}
  trialTemplate:
    command: [/bin/echo, "accuracy=${trialParameters.lr}"]
"""


def run_schemathesis(daemon, directory, requests):
    har = os.path.join(directory, "schemathesis.har")
    junit = os.path.join(directory, "schemathesis.xml")
    command = [sys.executable, "-m", "schemathesis.cli", "run", OPENAPI, "--url", daemon.url,
               "--header", f"Authorization: Bearer {daemon.token}",
               "--checks", ",".join(CHECKS), "--max-examples", str(max(1, requests // REQUESTS_PER_EXAMPLE)),
               "--seed", str(SEED), "--workers", "1", "--request-timeout", "10", "--no-shrink",
               "--suppress-health-check", "all", "--warnings", "off",
               "--report", "har,junit", "--report-har-path", har, "--report-junit-path", junit]
    started = time.monotonic()
    # In the test's own folder, so that Schemathesis keeps its cache of past failures there, not in the repository.
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=directory,
                            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""})
    seconds = time.monotonic() - started
    with open(har) as f:
        entries = json.load(f)["log"]["entries"]
    return result, entries, seconds


def test_schemathesis_finds_no_server_error_and_no_schema_violation(spawn_knobd, tmp_path):
    # Two trials at once at most: a fuzzed spec that happens to be valid starts few processes.
    daemon = spawn_knobd(["--max-parallel", "2"]).start()
    # The experiment the document's examples name, so that requests reach a real experiment and trial.
    status, _, body = daemon.request("POST", "/v1/experiments", EXAMPLE_SPEC)
    assert status == 201, body
    result, entries, seconds = run_schemathesis(daemon, str(tmp_path), REQUESTS)
    statuses = [entry["response"]["status"] for entry in entries]
    server_errors = [entry for entry in entries if entry["response"]["status"] >= 500]
    output = result.stdout + result.stderr
    with open(os.path.join(str(tmp_path), "schemathesis.xml")) as f:
        junit = f.read()
    check_failures = junit.count("<failure")
    schema_violations = junit.count("Response violates schema")
    report(f"schemathesis: {len(entries)} requests in {seconds:.0f} s, {len(server_errors)} server errors (5xx), "
           f"{schema_violations} schema violations, {check_failures} failed checks in all, "
           f"exit {result.returncode}; statuses {dict(sorted((s, statuses.count(s)) for s in set(statuses)))}")

    assert len(entries) >= REQUESTS * 0.5, f"only {len(entries)} requests were sent:\n{output[-3000:]}"
    assert not server_errors, "server errors:\n" + "\n".join(
        f"{e['request']['method']} {e['request']['url']} -> {e['response']['status']}: {e['response']['content'].get('text', '')[:300]}"
        for e in server_errors[:10])
    assert result.returncode == 0, f"schemathesis found problems:\n{output[-6000:]}"
    assert "Runtime Error" not in output, f"schemathesis did not run every phase:\n{output[-6000:]}"

    # knobd still answers, stops its experiments, and exits cleanly with no trial left behind.
    assert daemon.healthy(), f"knobd stopped answering:\n{daemon.log()}"
    status, _, experiments = daemon.request("GET", "/v1/experiments")
    assert status == 200
    for experiment in experiments:
        assert daemon.request("DELETE", f"/v1/experiments/{experiment['name']}", timeout=30)[0] == 204
    report(f"schemathesis: {len(experiments)} experiments were created by fuzzed specs")
    assert daemon.stop() == 0, f"knobd did not exit cleanly on SIGTERM:\n{daemon.log()}"
    deadline = time.monotonic() + 10
    while daemon.processes_under_home() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not daemon.processes_under_home(), "trial processes were left running"
