"""GET /metrics, read by the official Prometheus client's parser, after a known experiment; the README's list of
families, and the Grafana dashboard in examples/ that charts them."""
import http.client
import json
import os
import re

from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def documented_families():
    """The families the README's Metrics section lists, as {name: type}."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("### Metrics\n"):]
    section = section[:section.index("\n### ", 1)]
    found = dict(re.findall(r"^\| `(knob_[a-z_]+)(?:\{[a-z,]*\})?` \| (gauge|counter|histogram) \|", section, re.M))
    assert found, "the README's Metrics section lists no family"
    return found


def parsed_name(name, kind):
    """The name prometheus_client gives a family: a counter's without its _total."""
    return name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name


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
    documented = documented_families()
    for name, kind in documented.items():
        family = families.get(parsed_name(name, kind))
        assert family is not None, f"{name} is missing; found {sorted(families)}"
        assert family.type == kind, (name, family.type)
    assert sorted(families) == sorted(parsed_name(n, k) for n, k in documented.items()), "a family the README does not list"

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


def test_the_daemons_own_families_count_the_experiments_work(daemon, trials):
    families = scrape(daemon)
    assert len(trials) == 8

    # Grid search: each call of the suggester returns at most parallelTrialCount (2) trials, and all 8 came from it.
    calls = samples(families["knob_suggestion_duration_seconds"], "knob_suggestion_duration_seconds_count", algorithm="grid")
    assert calls and 4 <= calls[0].value, families["knob_suggestion_duration_seconds"].samples
    assert samples(families["knob_suggestion_duration_seconds"], "knob_suggestion_duration_seconds_bucket", algorithm="grid", le="+Inf")[0].value == calls[0].value
    suggested = samples(families["knob_suggestions"], "knob_suggestions_total", algorithm="grid")
    assert suggested and suggested[0].value == len(trials), families["knob_suggestions"].samples
    assert {s.labels["algorithm"] for s in families["knob_suggestions"].samples} == {"grid"}

    # Every trial printed one line (loss=… or "no luck"); the 6 that succeeded, one report each.
    lines = families["knob_scraped_lines"].samples[0].value
    output = families["knob_scraped_bytes"].samples[0].value
    reports = families["knob_scraped_reports"].samples[0].value
    assert reports == 6
    assert lines >= len(trials) and lines >= reports
    assert output >= lines + sum(len(f"loss={(x - 5) ** 2}") for x in range(1, 9) if x % 3), (output, lines)

    transactions = families["knob_store_transaction_duration_seconds"]
    count = {s.labels["kind"]: s.value for s in samples(transactions, "knob_store_transaction_duration_seconds_count")}
    assert set(count) == {"experiment", "trial", "reports", "event"}
    # Each trial was created, started and ended (creations come in batches of up to 2).
    assert count["trial"] >= len(trials) * 2 + len(trials) / 2, count
    # The experiment was created, started and ended; the reports came in 1 to 6 batches.
    assert count["experiment"] >= 3 and 1 <= count["reports"] <= 6, count
    assert all(s.value > 0 for s in samples(transactions, "knob_store_transaction_duration_seconds_sum", kind="trial"))

    # The store's families agree: as many durations as finished trials.
    finished = sum(t["state"] not in ("Pending", "Running") for t in trials)
    assert samples(families["knob_trial_duration_seconds"], "knob_trial_duration_seconds_count")[0].value == finished == 8


def test_the_grafana_dashboard_charts_the_documented_families():
    with open(os.path.join(ROOT, "examples", "grafana-dashboard.json"), encoding="utf-8") as f:
        dashboard = json.load(f)
    documented = documented_families()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    charted = set()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\bknob_[a-z_]+", target["expr"]))
            assert names, f"{panel['title']}: {target['expr']} names no knob family"
            for name in names:
                family = next((f for f in documented if name in (f, f + "_bucket", f + "_sum", f + "_count")), None)
                assert family, f"{panel['title']}: {name} is not a documented family ({sorted(documented)})"
                charted.add(family)
    assert charted == set(documented), f"families no panel charts: {sorted(set(documented) - charted)}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
