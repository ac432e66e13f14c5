"""Specs and edits written to hurt knobd, each sent to a live knobd on a home of its own.

Each must get a 4xx within a few seconds while knobd keeps answering, and knobd must then stop on
SIGTERM and start again on the same home with nothing stuck: a spec that was stored and traps when
its experiment starts would kill every restart.
"""
import re
import time

import pytest

# Answers slower than this are a failure: none of these specs is worth real work.
ANSWER_SECONDS = 5
# Words that only come from Swift's own descriptions of its errors and values.
SWIFT_NAMES = re.compile(r"DecodingError|typeMismatch|dataCorrupted|Swift\.|Yams\.|Node\.|CodingKeys|Optional\(")


def spec(name, parameters=None, algorithm="random", budget="maxTrialCount: 2\n  parallelTrialCount: 1",
         template='command: [/bin/echo, "loss=${trialParameters.x}"]'):
    parameters = parameters or '- {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}'
    return f"""apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {{name: {name}}}
spec:
  objective: {{type: minimize, objectiveMetricName: loss}}
  algorithm: {{algorithmName: {algorithm}}}
  {budget}
  parameters:
    {parameters}
  trialTemplate:
    {template}
"""


BILLION_LAUGHS = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: laughs}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
spec: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

HOSTILE_SPECS = {
    "int-max-beyond-2^53": spec("intmax", '- {name: x, parameterType: int, feasibleSpace: {min: "0", max: "9223372036854775807"}}'),
    "double-step-1e-300": spec("tinystep", '- {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1", step: "1e-300"}}'),
    "timeout-1e16": spec("timeout", template='command: [/bin/echo, "loss=${trialParameters.x}"]\n    timeoutSeconds: 1e16'),
    "parallel-1e9-unbounded": spec("parallel", budget="parallelTrialCount: 1000000000"),
    "grid-int-0-to-1e14": spec("gridint", '- {name: x, parameterType: int, feasibleSpace: {min: "0", max: "100000000000000"}}',
                               algorithm="grid"),
    "grid-double-step-1e-12": spec("griddouble", '- {name: x, parameterType: double, feasibleSpace: {min: "-1000", max: "1000", step: "1e-12"}}',
                                   algorithm="grid"),
    "billion-laughs": BILLION_LAUGHS,
    # A trial-end condition nested 100,000 deep (a GJSON query inside a query…): refused at 16, not parsed until the stack ends.
    "gjson-nested-100000-deep": spec("deepcondition", template=(
        "successCondition: 'status." + "#(" * 100_000 + "a==1" + ")" * 100_000 + "'\n"
        "    failureCondition: 'status.[" + "[" * 100_000 + "'\n    primaryContainerName: main\n"
        "    trialSpec: {apiVersion: argoproj.io/v1alpha1, kind: Workflow, spec: {entrypoint: a, templates: [{name: a, container: "
        "{image: x, command: [python3, \"${trialParameters.x}\"]}}]}}")),
    "40000-categorical-values": spec("manyvalues", "- {name: x, parameterType: categorical, feasibleSpace: {list: ["
                                     + ", ".join(f'"v{i}"' for i in range(40_000)) + "]}}"),
}


def post(daemon, text, content_type="application/yaml"):
    started = time.monotonic()
    try:
        status, _, body = daemon.request("POST", "/v1/experiments", text, content_type=content_type, timeout=ANSWER_SECONDS)
    except OSError as error:  # a timeout, or the connection dropped because knobd died
        pytest.fail(f"no answer within {ANSWER_SECONDS} s ({error!r}); knobd {'died' if daemon.process.poll() is not None else 'is alive'}:\n{daemon.log()}")
    return status, body, time.monotonic() - started


def message(body):
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return " | ".join([error.get("message", "")] + [f"{p.get('path')}: {p.get('message')}" for p in error.get("problems") or []])
    return str(body)


def assert_restarts_cleanly(daemon, expected_experiments=()):
    """SIGTERM, start again on the same home: knobd answers, keeps answering, and lists only what it should."""
    assert daemon.stop() == 0, f"knobd did not exit cleanly on SIGTERM:\n{daemon.log()}"
    daemon.start()
    time.sleep(1.0)  # an experiment resumed at start would have trapped by now
    assert daemon.process.poll() is None, f"knobd died after restarting:\n{daemon.log()}"
    status, _, experiments = daemon.request("GET", "/v1/experiments")
    assert status == 200
    assert sorted(e["name"] for e in experiments) == sorted(expected_experiments), experiments
    assert daemon.stop() == 0, f"knobd did not exit cleanly on SIGTERM after restarting:\n{daemon.log()}"


@pytest.mark.parametrize("case", HOSTILE_SPECS, ids=list(HOSTILE_SPECS))
def test_hostile_spec_gets_a_4xx_and_knobd_survives(spawn_knobd, case):
    daemon = spawn_knobd().start()
    status, body, seconds = post(daemon, HOSTILE_SPECS[case])
    assert 400 <= status < 500, f"{case}: status {status} after {seconds:.1f} s: {body}"
    assert seconds < ANSWER_SECONDS
    assert not SWIFT_NAMES.search(message(body)), f"{case}: the message shows Swift internals: {message(body)}"
    assert daemon.healthy(), f"{case}: knobd stopped answering /healthz:\n{daemon.log()}"
    assert_restarts_cleanly(daemon)


def test_forty_thousand_categorical_values_are_answered_quickly(spawn_knobd):
    daemon = spawn_knobd().start()
    _, _, seconds = post(daemon, HOSTILE_SPECS["40000-categorical-values"])
    assert seconds < 2, f"40,000 values took {seconds:.1f} s: the checks on a list must be linear"


def test_a_budget_edit_is_held_to_the_limits_and_to_json_integers(spawn_knobd):
    daemon = spawn_knobd(["--max-parallel", "8"]).start()
    status, body, _ = post(daemon, spec("budget", budget="maxTrialCount: 1\n  parallelTrialCount: 1"))
    assert status == 201, body

    def patch(payload):
        return daemon.request("PATCH", "/v1/experiments/budget", payload, content_type="application/json", timeout=ANSWER_SECONDS)

    status, _, body = patch('{"parallelTrialCount": 100000}')
    assert status == 422, body
    assert "--max-parallel" in message(body) and "8" in message(body), message(body)
    status, _, body = patch('{"maxTrialCount": 5, "parallelTrialCount": 9}')
    assert status == 422 and "--max-parallel" in message(body), body
    status, _, body = patch('{"maxTrialCount": 100000000}')
    assert status == 422 and "1000000" in message(body), body
    status, _, body = patch('{"maxFailedTrialCount": 100000000}')
    assert status == 422 and "1000000" in message(body), body
    for field, value in [("parallelTrialCount", "true"), ("parallelTrialCount", '"0x10"'), ("maxTrialCount", '"16"'),
                         ("maxTrialCount", "1.5"), ("maxFailedTrialCount", "null"), ("parallelTrialCount", "[1]"),
                         ("parallelTrialCount", "0x10")]:
        status, _, body = patch(f'{{"{field}": {value}}}')
        assert status in (400, 422), f"{field}: {value} got {status}: {body}"
        if value != "0x10":  # not JSON at all: the message is about the body
            assert field in message(body) and "whole number" in message(body), message(body)
        assert not SWIFT_NAMES.search(message(body)), message(body)
    # Nothing above changed the budget; a good edit within the limits does.
    status, _, body = daemon.request("GET", "/v1/experiments/budget")
    assert body["budget"]["parallelTrialCount"] == 1 and body["budget"]["maxTrialCount"] == 1, body
    status, _, body = patch('{"maxTrialCount": 8, "parallelTrialCount": 8}')
    assert status == 200 and body["budget"]["parallelTrialCount"] == 8, body
    # Stop it before it runs more trials, then a restart finds it and comes up.
    daemon.request("POST", "/v1/experiments/budget/stop")
    assert daemon.healthy()
    assert_restarts_cleanly(daemon, ["budget"])


def test_flow_style_yaml_is_read_as_yaml(spawn_knobd):
    daemon = spawn_knobd().start()
    flow = ('{apiVersion: kubeflow.org/v1beta1, kind: Experiment, metadata: {name: flow}, spec: {'
            'objective: {type: minimize, objectiveMetricName: loss}, algorithm: {algorithmName: random}, '
            'maxTrialCount: 1, parallelTrialCount: 1, '
            'parameters: [{name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}], '
            'trialTemplate: {command: [/bin/echo, "loss=${trialParameters.x}"]}}}')
    status, body, _ = post(daemon, flow)
    assert status in (201, 422), body
    assert "JSON" not in message(body), f"a flow-style YAML document was read as JSON: {message(body)}"
    if status == 422:
        assert body["error"].get("problems"), f"a 422 must be about the spec's content: {body}"
    assert daemon.healthy()


def test_a_byte_order_mark_changes_nothing(spawn_knobd):
    daemon = spawn_knobd().start()
    plain = spec("plain", budget="maxTrialCount: 1\n  parallelTrialCount: 1")
    marked = "\ufeff" + spec("marked", budget="maxTrialCount: 1\n  parallelTrialCount: 1")
    plain_status, plain_body, _ = post(daemon, plain)
    marked_status, marked_body, _ = post(daemon, marked)
    assert plain_status == 201, plain_body
    assert marked_status == plain_status, f"with a BOM: {marked_status} {marked_body}; without: {plain_status}"
    # Also for a bad spec: the same problems, BOM or not.
    bad = spec("bad", '- {name: x, parameterType: double, feasibleSpace: {min: "1", max: "0"}}')
    bad_status, bad_body, _ = post(daemon, bad)
    marked_bad_status, marked_bad_body, _ = post(daemon, "\ufeff" + bad)
    assert bad_status == 422 and marked_bad_status == 422, (bad_body, marked_bad_body)
    assert message(bad_body) == message(marked_bad_body)


def test_messages_name_no_swift_types(spawn_knobd):
    daemon = spawn_knobd().start()
    for text, content_type in [('{"apiVersion": 1e999}', "application/json"), ('{"apiVersion": ["a", {"b": 1e999}]}', "application/json"),
                               ('{"kind": tru}', "application/json"), ("[1, 2", "application/json"),
                               ("? [a, b]\n: c\n", "application/yaml"),
                               ("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata:\n  ? {a: 1}\n  : x\n", "application/yaml")]:
        status, body, _ = post(daemon, text, content_type=content_type)
        assert 400 <= status < 500, f"{text}: {status} {body}"
        assert not SWIFT_NAMES.search(message(body)), f"{text}: {message(body)}"
    assert daemon.healthy()


def test_a_wrong_method_gets_405_with_allow_and_an_unknown_path_404(spawn_knobd):
    daemon = spawn_knobd().start()
    for method, path, allowed in [("TRACE", "/v1/experiments", "GET, POST"), ("PUT", "/v1/experiments/x", "DELETE, GET, PATCH"),
                                  ("DELETE", "/healthz", "GET"), ("GET", "/v1/experiments/x/stop", "POST")]:
        status, headers, body = daemon.request(method, path, timeout=ANSWER_SECONDS)
        assert status == 405, f"{method} {path}: {status} {body}"
        assert headers.get("Allow") == allowed, headers
        assert body["error"]["code"] == "MethodNotAllowed" and method in body["error"]["message"], body
    status, _, body = daemon.request("TRACE", "/nowhere", timeout=ANSWER_SECONDS)
    assert status == 404 and body["error"]["code"] == "NotFound", body
    status, _, body = daemon.request("GET", "/v1/experiments/x/nothing", timeout=ANSWER_SECONDS)
    assert status == 404, body
