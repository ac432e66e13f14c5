import Foundation
import Knob
import KnobClient
import Store
import Testing

/// A trainer that pushes its reports to knob over the Unix socket in KNOB_PUSH_URL, with the token in
/// KNOB_PUSH_TOKEN, using only Python's standard library. It prints an `accuracy=` line that a StdOut
/// collector would take (a Push experiment must not). Each trial after the first also tries what must be
/// refused: a report to the trial before it (ended), with that trial's token and with its own; a wrong
/// token; no token; a value that is no number. What it pushed and what it was answered go to
/// $KNOB_TRIAL_DIR/outcome.json.
let pushTrainer = """
    import http.client, json, os, socket, sys
    url = os.environ["KNOB_PUSH_URL"]
    token = os.environ["KNOB_PUSH_TOKEN"]
    experiment, trial = os.environ["KNOB_EXPERIMENT"], os.environ["KNOB_TRIAL"]
    assert url.startswith("unix://"), url
    class Connection(http.client.HTTPConnection):
        def __init__(self):
            super().__init__("localhost", timeout=30)
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(url[len("unix://"):])
    def push(name, body, bearer):
        connection = Connection()
        headers = {"Content-Type": "application/json"}
        if bearer is not None:
            headers["Authorization"] = "Bearer " + bearer
        connection.request("POST", f"/v1/experiments/{experiment}/trials/{name}/metrics", body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        answer = response.status, json.loads(response.read())
        connection.close()
        return answer
    lr = float(sys.argv[1])
    print("accuracy=123", flush=True)
    pushed = []
    for step in range(1, 6):
        report = {"accuracy": round(lr * step, 6), "loss": str(1.0 / step), "step": step, "epoch_seconds": 0.5}
        status, answer = push(trial, report, token)
        assert status == 202, (status, answer)
        pushed.append(report)
    outcome = {"pushed": pushed}
    number = int(trial.rsplit("-", 1)[1])
    if number > 1:
        earlier = f"{experiment}-{number - 1}"
        with open(os.path.join(os.environ["KNOB_TRIAL_DIR"], "..", earlier, "push-token")) as f:
            earlier_token = f.read()
        outcome["ended"] = push(earlier, {"accuracy": 9.0}, earlier_token)
        outcome["foreign"] = push(earlier, {"accuracy": 9.0}, token)
        outcome["wrong"] = push(trial, {"accuracy": 9.0}, "0" * 64)
        outcome["missing"] = push(trial, {"accuracy": 9.0}, None)
        outcome["not_a_number"] = push(trial, {"accuracy": "high"}, token)
    with open(os.path.join(os.environ["KNOB_TRIAL_DIR"], "outcome.json"), "w") as f:
        json.dump(outcome, f)
    """

@Suite struct PushCollectorTests {
    @Test func knobRunServesThePushedReportsAndRefusesThoseItMustNot() async throws {
        let spec = """
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: pushed}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
              algorithm: {algorithmName: grid}
              parallelTrialCount: 1
              maxTrialCount: 3
              metricsCollectorSpec:
                collector: {kind: Push}
              parameters:
                - {name: lr, parameterType: discrete, feasibleSpace: {list: ["0.1", "0.2", "0.3"]}}
              trialTemplate:
                command: [python3, trainer.py, "${trialParameters.lr}"]
            """
        let (home, trials) = try await runWithTrainer(pushTrainer, spec: spec, experiment: "pushed")
        #expect(trials.map(\.trial.state) == [.succeeded, .succeeded, .succeeded])
        for (trial, reports) in trials {
            let outcomeData = try Data(contentsOf: URL(fileURLWithPath: "\(home)/trials/pushed/\(trial.name)/outcome.json"))
            let outcome = try #require(try JSONSerialization.jsonObject(with: outcomeData) as? [String: Any])
            let pushed = try #require(outcome["pushed"] as? [[String: Any]])
            // Exactly what the trial pushed, in order, with its steps; not its printed line, not an undeclared name.
            let accuracy = reports.filter { $0.name == "accuracy" }
            let loss = reports.filter { $0.name == "loss" }
            #expect(reports.count == 2 * pushed.count, "\(reports.map { "\($0.name)=\($0.value ?? .nan)" })")
            #expect(accuracy.map(\.value) == pushed.map { ($0["accuracy"] as? NSNumber)?.doubleValue })
            #expect(loss.map(\.value) == pushed.map { Double($0["loss"] as? String ?? "") })
            #expect(accuracy.map(\.step) == [1, 2, 3, 4, 5] && loss.map(\.step) == [1, 2, 3, 4, 5])
            #expect(trial.objectiveValue == accuracy.compactMap(\.value).max())
            #expect(!reports.contains { $0.value == 123 || $0.value == 9 })

            let number = Int(trial.name.split(separator: "-").last!)!
            guard number > 1 else { continue }
            let earlier = "pushed-\(number - 1)"
            func answer(_ key: String) -> (status: Int, code: String, message: String) {
                let pair = outcome[key] as? [Any]
                let error = (pair?.last as? [String: Any])?["error"] as? [String: Any]
                return ((pair?.first as? NSNumber)?.intValue ?? 0, error?["code"] as? String ?? "", error?["message"] as? String ?? "")
            }
            let ended = answer("ended")
            #expect(ended.status == 409 && ended.message.contains(earlier) && ended.message.contains("Succeeded"), "\(ended)")
            #expect(answer("foreign").status == 403, "\(answer("foreign"))")
            #expect(answer("wrong").status == 403 && answer("wrong").message.contains(trial.name), "\(answer("wrong"))")
            #expect(answer("missing").status == 401, "\(answer("missing"))")
            let notANumber = answer("not_a_number")
            #expect(notANumber.status == 422 && notANumber.message.contains("accuracy"), "\(notANumber)")
        }
        // The socket served the run only.
        #expect(!FileManager.default.fileExists(atPath: "\(home)/trials/pushed/push.sock"))
    }

    @Test func knobRunRefusesAKubernetesPushExperimentSayingWhatToDo() async throws {
        let dir = makeTemporaryDirectory()
        try write("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: podpush}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy}
              algorithm: {algorithmName: random}
              maxTrialCount: 1
              parallelTrialCount: 1
              metricsCollectorSpec: {collector: {kind: Push}}
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                trialParameters: [{name: x, reference: x}]
                trialSpec:
                  apiVersion: v1
                  kind: Pod
                  spec:
                    containers: [{name: training, image: trainer, command: [train, "${trialParameters.x}"]}]
            """, to: "\(dir)/spec.yaml")
        let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", "\(dir)/home"])
        #expect(run.status == 1 && run.stderr.contains("--push-url") && run.stderr.contains("podpush"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/home/knob.db"), "nothing was recorded")
    }

    @Test func knobdTakesAPushURLOnlyWithItsTCPListener() async throws {
        let home = makeTemporaryDirectory()
        let alone = try await runToEnd(DaemonProcess.executable, ["--home", home, "--push-url", "http://knobd.ml.svc:8123"])
        #expect(alone.status == 2 && alone.stderr.contains("--push-url") && alone.stderr.contains("--listen"), "\(alone)")
        let notAURL = try await runToEnd(DaemonProcess.executable, ["--home", home, "--listen", "127.0.0.1:1", "--push-url", "knobd:8123"])
        #expect(notAURL.status == 2 && notAURL.stderr.contains("http://"), "\(notAURL)")
    }
}

/// Pushes steps 1 to 3, says so in its folder, waits there for a file named go, then pushes steps 4 to 6.
let pushAcrossRestartTrainer = """
    import http.client, json, os, socket, time
    folder = os.environ["KNOB_TRIAL_DIR"]
    path = os.environ["KNOB_PUSH_URL"][len("unix://"):]
    def push(step):
        connection = http.client.HTTPConnection("localhost", timeout=30)
        connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.sock.connect(path)
        connection.request("POST", f"/v1/experiments/{os.environ['KNOB_EXPERIMENT']}/trials/{os.environ['KNOB_TRIAL']}/metrics",
                           body=json.dumps({"accuracy": step / 10, "step": step}),
                           headers={"Authorization": "Bearer " + os.environ["KNOB_PUSH_TOKEN"]})
        response = connection.getresponse()
        assert response.status == 202, (response.status, response.read())
        connection.close()
    for step in (1, 2, 3):
        push(step)
    open(os.path.join(folder, "first-half"), "w").close()
    while not os.path.exists(os.path.join(folder, "go")):
        time.sleep(0.05)
    for step in (4, 5, 6):
        push(step)
    """

@Suite(.serialized) struct PushAcrossRestartTests {
    @Test func aTrialAdoptedByANewKnobdPushesWithItsTokenAndEachReportIsStoredOnce() async throws {
        let dir = makeTemporaryDirectory()
        try write(pushAcrossRestartTrainer, to: "\(dir)/trainer.py")
        try write("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: pushrestart}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy}
              algorithm: {algorithmName: random}
              parallelTrialCount: 1
              maxTrialCount: 1
              metricsCollectorSpec: {collector: {kind: Push}}
              parameters:
                - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.9"}}
              trialTemplate:
                command: [python3, trainer.py, "${trialParameters.lr}"]
            """, to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let first = try await DaemonProcess.start(home: home)
        let created = try await knob(["create", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(created.status == 0, "\(created.stderr)")
        let folder = "\(home)/trials/pushrestart/pushrestart-1"
        func stored() async -> Int {
            guard let answer = try? await first.client.request("GET", "/v1/experiments/pushrestart/trials/pushrestart-1/metrics"),
                  let reports = try? json(answer.text) as? [Any] else { return 0 }
            return reports.count
        }
        // The first half is pushed and recorded (with the offset it reached) before knobd dies.
        for _ in 0..<1200 where await stored() < 3 || !FileManager.default.fileExists(atPath: "\(folder)/first-half") {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(await stored() == 3)
        kill(first.pid, SIGKILL)
        _ = await first.process.wait()

        let second = try await DaemonProcess.start(home: home, log: "\(home)/knobd-2.log")
        defer { kill(second.pid, SIGKILL) }
        FileManager.default.createFile(atPath: "\(folder)/go", contents: nil)
        let waited = try await knob(["wait", "pushrestart", "--home", home, "--timeout", "120"])
        #expect(waited.status == 0, "\(waited.stdout)\(waited.stderr)")
        let trials = try await storedTrials(home, "pushrestart")
        #expect(trials.map(\.trial.state) == [.succeeded], "\(trials.map(\.trial.message))")
        let reports = try #require(trials.first?.reports)
        #expect(reports.map(\.step) == [1, 2, 3, 4, 5, 6])
        #expect(reports.map(\.value) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    }
}

/// A pod whose container pushes three reports over TCP to KNOB_PUSH_URL with its KNOB_PUSH_TOKEN, and prints
/// a line a StdOut collector would take.
func pushingPod() -> String {
    let script = [
        "import http.client, json, os, urllib.parse",
        "url = urllib.parse.urlsplit(os.environ['KNOB_PUSH_URL'])",
        "path = '/v1/experiments/' + os.environ['KNOB_EXPERIMENT'] + '/trials/' + os.environ['KNOB_TRIAL'] + '/metrics'",
        "print('accuracy=123', flush=True)",
        "for step in (1, 2, 3):",
        "    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)",
        "    body = json.dumps({'accuracy': step / 10, 'loss': 1 / step, 'step': step})",
        "    connection.request('POST', path, body=body, headers={'Authorization': 'Bearer ' + os.environ['KNOB_PUSH_TOKEN']})",
        "    response = connection.getresponse()",
        "    assert response.status == 202, (response.status, response.read())",
        "    connection.close()",
    ].joined(separator: "\\n")
    return """
        apiVersion: v1
        kind: Pod
        spec:
          containers:
            - name: training-container
              image: python:3.11
              command: ["python3", "-c", "\(script)", "${trialParameters.learningRate}", "${trialParameters.momentum}"]
        """
}

@Suite(.serialized) struct PushOnKubernetesTests {
    @Test func podsPushThroughTheTCPListenerAtThePushURL() async throws {
        let dir = makeTemporaryDirectory()
        try write("push-test-token-of-32-characters\n", to: "\(dir)/token")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(dir)/token")
        let port = 41_000 + Int(getpid() % 20_000)
        let cluster = try await KubeCluster.start(daemonArguments: [
            "--listen", "127.0.0.1:\(port)", "--token-file", "\(dir)/token", "--push-url", "http://127.0.0.1:\(port)"])
        defer { cluster.stop() }
        let spec = kubeSpec("podpush", trials: 2, parallel: 2, maxFailed: 0, trialSpec: pushingPod())
            .replacingOccurrences(of: "  trialTemplate:", with: "  metricsCollectorSpec: {collector: {kind: Push}}\n  trialTemplate:")
        try await submit(cluster.daemon, spec)
        let view = try await waitForEnd(cluster.daemon, "podpush")
        #expect(view["status"] as? String == "Succeeded", "\(view)")
        let trials = try await storedTrials(cluster.daemon.home, "podpush")
        #expect(trials.count == 2 && trials.allSatisfy { $0.trial.state == .succeeded }, "\(trials.map(\.trial.message))")
        for (_, reports) in trials {
            #expect(reports.filter { $0.name == "accuracy" }.map(\.value) == [0.1, 0.2, 0.3])
            #expect(reports.filter { $0.name == "loss" }.map(\.value) == [1, 0.5, 1.0 / 3])
            #expect(reports.filter { $0.name == "accuracy" }.map(\.step) == [1, 2, 3])
        }
        // Each pod was given the URL and its own token; the tokens differ.
        let pods = try cluster.server.created().map(\.object).filter { $0["kind"] as? String == "Pod" }
        let environments = pods.map { pod in
            (((pod["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first?["env"] as? [[String: String]] ?? [])
                .reduce(into: [String: String]()) { $0[$1["name"] ?? ""] = $1["value"] }
        }
        #expect(environments.count == 2 && environments.allSatisfy { $0["KNOB_PUSH_URL"] == "http://127.0.0.1:\(port)" })
        #expect(Set(environments.compactMap { $0["KNOB_PUSH_TOKEN"] }).count == 2)
    }
}

/// `curveTrainer`, pushing each value (with its step) instead of printing it.
let pushedCurveTrainer = """
    import http.client, json, os, socket, sys, time
    args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
    def push(step, value):
        connection = http.client.HTTPConnection("localhost", timeout=30)
        connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.sock.connect(os.environ["KNOB_PUSH_URL"][len("unix://"):])
        connection.request("POST", f"/v1/experiments/{os.environ['KNOB_EXPERIMENT']}/trials/{os.environ['KNOB_TRIAL']}/metrics",
                           body=json.dumps({"accuracy": value, "step": step}),
                           headers={"Authorization": "Bearer " + os.environ["KNOB_PUSH_TOKEN"]})
        assert connection.getresponse().status == 202
        connection.close()
    step = 0
    for token in args["curve"].split("_"):
        if token == "hold":
            time.sleep(60)
        else:
            step += 1
            push(step, float(token))
            time.sleep(0.2)
    """

@Suite struct PushEarlyStoppingTests {
    /// medianstop (2 completed trials required, from step 2): the third trial's pushed curve falls below the
    /// median at step 2, and it is stopped there instead of holding for a minute.
    @Test func pushedReportsFeedTheStoppingRule() async throws {
        let curves = ["0.5_0.6_0.7_0.8", "0.6_0.7_0.8_0.9", "0.2_0.3_hold_0.99"]
        let spec = curveSpec(name: "pushstop", curves: curves, rule: "medianstop", settings: ["min_trials_required": "2", "start_step": "2"])
            .replacingOccurrences(of: "  trialTemplate:", with: "  metricsCollectorSpec: {collector: {kind: Push}}\n  trialTemplate:")
        let (_, trials) = try await runWithTrainer(pushedCurveTrainer, spec: spec, experiment: "pushstop")
        #expect(trials.map(\.trial.state) == [.succeeded, .succeeded, .earlyStopped], "\(trials.map(\.trial.message))")
        #expect(trials.last?.reports.map(\.value) == [0.2, 0.3])
        #expect(trials.last?.trial.objectiveValue == 0.3)
    }
}
