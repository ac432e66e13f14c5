"""GET /metrics, read by the official Prometheus client's parser, after a known experiment."""
import http.client

from prometheus_client.parser import text_string_to_metric_families


def scrape(daemon):
    status, headers, text = daemon.request("GET", "/metrics")
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/plain"), headers
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, name=None, **labels):
    return [s for s in family.samples if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items())]


def test_metrics_count_the_experiment_its_trials_and_the_requests(daemon, trials):
    # One request whose route and status the latency histogram must show.
    assert daemon.request("GET", "/v1/experiments/dash")[0] == 200
    assert daemon.request("GET", "/v1/experiments/nothing-here")[0] == 404
    families = scrape(daemon)
    for name in ("knob_experiments", "knob_trials", "knob_trial_duration_seconds", "knob_trial_reports", "knob_api_request_duration_seconds"):
        assert name in families, f"{name} is missing; found {sorted(families)}"

    status = daemon.request("GET", "/v1/experiments/dash")[2]["status"]
    experiments = families["knob_experiments"]
    assert experiments.type == "gauge"
    assert {s.labels["status"]: s.value for s in experiments.samples}[status] == 1
    assert sum(s.value for s in experiments.samples) == 1

    by_state = {s.labels["state"]: s.value for s in families["knob_trials"].samples}
    expected = {state: sum(t["state"] == state for t in trials) for state in by_state}
    assert by_state == expected and by_state["Succeeded"] == 6 and by_state["Failed"] == 2, by_state

    durations = families["knob_trial_duration_seconds"]
    assert durations.type == "histogram"
    assert samples(durations, "knob_trial_duration_seconds_count")[0].value == len(trials) == 8
    infinity = samples(durations, "knob_trial_duration_seconds_bucket", le="+Inf")
    assert infinity and infinity[0].value == 8
    buckets = [s.value for s in samples(durations, "knob_trial_duration_seconds_bucket")]
    assert buckets == sorted(buckets), "histogram buckets are cumulative"

    # Each completed trial printed one loss line.
    assert families["knob_trial_reports"].samples[0].value == 6

    latency = families["knob_api_request_duration_seconds"]
    assert latency.type == "histogram"
    found = samples(latency, "knob_api_request_duration_seconds_count", route="/v1/experiments/{name}", method="GET", status="200")
    assert found and found[0].value >= 2, [s for s in latency.samples if s.name.endswith("_count")]
    assert samples(latency, "knob_api_request_duration_seconds_count", route="/v1/experiments/{name}", method="GET", status="404")


def test_metrics_need_the_token_over_tcp(daemon):
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 401


def test_an_experiments_reports_of_a_metric_come_in_one_request(daemon, trials):
    status, _, reports = daemon.request("GET", "/v1/experiments/dash/metrics")
    assert status == 200, reports
    completed = {t["name"]: t["objectiveValue"] for t in trials if t["state"] == "Succeeded"}
    assert {r["trialName"]: r["value"] for r in reports} == completed and len(reports) == len(completed)
    assert all(r["step"] >= 0 for r in reports)
    assert daemon.request("GET", "/v1/experiments/dash/metrics?metric=loss")[2] == reports
    assert daemon.request("GET", "/v1/experiments/dash/metrics?metric=accuracy")[2] == []
    assert daemon.request("GET", "/v1/experiments/nothing-here/metrics")[0] == 404
